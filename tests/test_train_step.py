"""The jit train step: checked against an independent computation, determinism, n_critic,
weight clipping, and that each update moves only its own network."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import wgan_gp as wgan_gp_cfg
from jaxgan.core.losses import LOSSES
from jaxgan.core.regularizers import REGULARIZERS
from jaxgan.base import rng
from jaxgan.base.errors import UserError
from jaxgan.core import state as state_lib, train_step as ts
from tests.conftest import tiny_config


def make(config, shape=(28, 28, 1), num_classes=0, seed=0):
  gan, state = state_lib.create(config, shape, num_classes)
  step = jax.jit(ts.make_train_step(gan, config))
  imgs = np.random.RandomState(seed).randint(
      0, 256, (config.train.n_critic, config.data.batch_size, *shape)).astype(np.uint8)
  batch = {"images": jnp.asarray(imgs)}
  if num_classes:
    batch["labels"] = jnp.asarray(np.random.RandomState(seed + 1).randint(
        0, num_classes, (config.train.n_critic, config.data.batch_size)), jnp.int32)
  return gan, state, step, batch


def leaves_equal(a, b):
  return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_step_matches_an_independent_computation():
  """One D update then one G update, recomputed with plain jnp on the same draws."""
  c = tiny_config(**{"optim.g.b1": 0.9, "optim.d.b1": 0.9})
  gan, state, step, batch = make(c)
  assert float(state.d.opt_state.hyperparams["b1"]) == pytest.approx(0.9)
  new, m = step(state, batch)
  gp, dp = nnx.to_pure_dict(state.g.params), nnx.to_pure_dict(state.d.params)

  def G(p, z):
    h = jax.nn.relu(z @ p["hidden"][0]["kernel"] + p["hidden"][0]["bias"])
    return jnp.tanh(h @ p["out"]["kernel"] + p["out"]["bias"]).reshape(-1, 28, 28, 1)

  def D(p, x):
    h = x.reshape(x.shape[0], -1)
    h = jax.nn.leaky_relu(h @ p["hidden"][0]["kernel"] + p["hidden"][0]["bias"], 0.2)
    return (h @ p["out"]["kernel"] + p["out"]["bias"])[:, 0]

  key = rng.step_key(state.key, 0)
  k_d, k_g = rng.stream(key, "critic", 0), rng.stream(key, "generator")
  b = c.data.batch_size
  x = np.asarray(batch["images"][0], np.float32) / 127.5 - 1.0
  fake = G(gp, jax.random.normal(rng.stream(k_d, "z"), (b, c.model.latent_dim)))
  d_loss = lambda p: (jnp.mean(jax.nn.softplus(-D(p, x)))
                      + jnp.mean(jax.nn.softplus(D(p, fake))))
  tx = optax.adam(c.optim.d.lr, 0.9, 0.999, eps=1e-8)
  val, g = jax.value_and_grad(d_loss)(dp)
  dp2 = optax.apply_updates(dp, tx.update(g, tx.init(dp), dp)[0])
  assert float(m["d_loss"]) == pytest.approx(float(val), rel=1e-5)

  z_g = jax.random.normal(rng.stream(k_g, "z"), (b, c.model.latent_dim))
  g_loss = lambda p: jnp.mean(jax.nn.softplus(-D(dp2, G(p, z_g))))  # non-saturating, new D
  val, g = jax.value_and_grad(g_loss)(gp)
  gp2 = optax.apply_updates(gp, tx.update(g, tx.init(gp), gp)[0])
  assert float(m["g_loss"]) == pytest.approx(float(val), rel=1e-5)
  for want, got in ((dp2, new.d.params), (gp2, new.g.params)):
    for a, b_ in zip(jax.tree.leaves(want), jax.tree.leaves(nnx.to_pure_dict(got))):
      # Adam's first step is lr * sign(g) up to eps: compare to a fraction of lr.
      np.testing.assert_allclose(a, b_, atol=c.optim.d.lr * 0.05)


def test_identical_inputs_give_identical_results_and_keys_matter():
  c = tiny_config()
  _, state, step, batch = make(c)
  s1, m1 = step(state, batch)
  s2, m2 = step(state, batch)
  assert leaves_equal(s1, s2) and leaves_equal(m1, m2)
  other = state.replace(key=rng.root_key(1))
  s3, _ = step(other, batch)
  assert not leaves_equal(s1.g.params, s3.g.params)


def test_each_update_moves_only_its_own_network():
  # G frozen (lr 0): the step must leave G exactly as it was, and D must move.
  _, state, step, batch = make(tiny_config(**{"optim.g.lr": 0.0}))
  new, _ = step(state, batch)
  assert leaves_equal(new.g.params, state.g.params)
  assert not leaves_equal(new.d.params, state.d.params)
  # D frozen: only G moves.
  _, state, step, batch = make(tiny_config(**{"optim.d.lr": 0.0}))
  new, _ = step(state, batch)
  assert leaves_equal(new.d.params, state.d.params)
  assert not leaves_equal(new.g.params, state.g.params)


def test_n_critic_updates():
  c = tiny_config(**{"train.n_critic": 3})
  _, state, step, batch = make(c)
  new, _ = step(state, batch)
  # Adam counts its updates: 3 for the critic, 1 for the generator, per call.
  assert int(new.d.opt_state.count) == 3
  assert int(new.g.opt_state.count) == 1
  assert int(new.step) == 1
  new, _ = step(new, batch)
  assert int(new.d.opt_state.count) == 6 and int(new.step) == 2


def test_each_critic_update_sees_its_own_real_batch():
  c = tiny_config(**{"train.n_critic": 2})
  _, state, step, batch = make(c)
  _, m = step(state, batch)
  swapped = {"images": batch["images"][::-1]}
  _, m2 = step(state, swapped)
  assert float(m["d_loss"]) != float(m2["d_loss"])


def test_scan_and_unrolled_critic_loops_agree():
  c = tiny_config(**{"train.n_critic": 3})
  _, state, step, batch = make(c)
  cs = tiny_config(**{"train.n_critic": 3, "train.critic_loop": "scan"})
  gan_s, _ = state_lib.create(cs, (28, 28, 1), 0)
  a, ma = step(state, batch)
  b, mb = jax.jit(ts.make_train_step(gan_s, cs))(state, batch)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
  assert float(ma["d_loss"]) == pytest.approx(float(mb["d_loss"]), rel=1e-5)


def test_weight_clipping_bounds_every_critic_weight():
  c = tiny_config(**{"loss": "wgan", "penalty": "clip", "clip_value": 0.01,
                     "train.n_critic": 2, "optim.d.lr": 0.1})
  _, state, step, batch = make(c)
  new, _ = step(state, batch)
  leaves = jax.tree.leaves(new.d.params)
  assert max(float(jnp.max(jnp.abs(p))) for p in leaves) <= 0.01 + 1e-9
  assert any(float(jnp.max(jnp.abs(p))) == pytest.approx(0.01) for p in leaves)


def test_wgan_gp_metrics_and_step():
  c = wgan_gp_cfg.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  c.model.latent_dim = 8
  c.data.batch_size, c.train.n_critic = 8, 2
  _, state, step, batch = make(c)
  _, m = step(state, batch)
  for k in ("c_loss", "c_wass_loss", "c_gp", "g_loss", "d_x", "d_g_z", "d_grad_norm",
            "g_grad_norm"):
    assert k in m and np.isfinite(float(m[k])), k
  assert float(m["c_loss"]) == pytest.approx(float(m["c_wass_loss"]) + 10 * float(m["c_gp"]),
                                             rel=1e-5)


D_SIDE = [n for n in REGULARIZERS.names() if "d" in REGULARIZERS.get(n).sides]


def _pairs():
  """Every registered loss (without a D term), and every D term (weight clipping and each
  D-side regularizer) with a loss, cycling through the losses: each one is exercised, and
  the suite does not compile the whole cross product (each pair is one compile)."""
  losses, terms = LOSSES.names(), ["clip", *D_SIDE]
  return ([(l, "none") for l in losses]
          + [(losses[i % len(losses)], t) for i, t in enumerate(terms)])


@pytest.mark.parametrize("loss,penalty", _pairs())
def test_every_loss_and_every_penalty_trains(loss, penalty):
  c = tiny_config(**{"loss": loss, "penalty": penalty, "penalty_weight": 1.0})
  _, state, step, batch = make(c)
  for _ in range(2):
    state, m = step(state, batch)
  assert all(np.all(np.isfinite(np.asarray(v))) for v in m.values())
  assert bool(m["params_finite"])


# The step trusts its config: a combination that would train the wrong thing is refused
# once, by jaxgan/run/validate.py, with the user-facing error (before any data is read).
def test_label_tricks_are_refused_for_losses_without_targets():
  from jaxgan.run import validate  # pylint: disable=g-import-not-at-top
  c = tiny_config(**{"loss": "hinge", "labels.noise": 0.1})
  with pytest.raises(UserError, match="no meaning for config.loss='hinge'.*lsgan"):
    validate.validate(c)


def test_gradient_penalty_refused_with_batchnorm_critic():
  c = wgan_gp_cfg.get_config()
  c.model.d_norm = "batch"
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  from jaxgan.run import validate  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="couples the examples.*d_norm='layer' or 'none'"):
    validate.validate(c)


def test_label_noise_changes_the_d_loss():
  _, state0, step0, batch = make(tiny_config())
  _, state1, step1, _ = make(tiny_config(**{"labels.noise": 0.1, "labels.flip": 0.2}))
  _, m0 = step0(state0, batch)
  _, m1 = step1(state1, batch)
  assert float(m0["d_loss"]) != pytest.approx(float(m1["d_loss"]), rel=1e-3)


def test_conditional_step_uses_labels():
  c = tiny_config(**{"model.conditioning": "concat"})
  _, state, step, batch = make(c, num_classes=10)
  _, m = step(state, batch)
  other = dict(batch, labels=(batch["labels"] + 1) % 10)
  _, m2 = step(state, other)
  assert float(m["d_loss"]) != float(m2["d_loss"])


@pytest.mark.parametrize("method", ["projection", "acgan"])
def test_conditional_methods_train(method):
  c = tiny_config(**{"model.conditioning": method, "loss": "wgan", "penalty": "gp"})
  _, state, step, batch = make(c, num_classes=10)
  for _ in range(2):
    state, m = step(state, batch)
  assert all(np.all(np.isfinite(np.asarray(v))) for v in m.values())
  if method == "acgan":
    # Cross-entropy of a 10-way classifier starts near log(10).
    assert 1.0 < float(m["d_cls_loss"]) < 4.0 and 1.0 < float(m["g_cls_loss"]) < 4.0
  else:
    assert "d_cls_loss" not in m


def test_gradient_penalty_is_taken_wrt_the_image_only(monkeypatch):
  from jaxgan.core.regularizers import REGULARIZERS
  seen = []
  original = REGULARIZERS.get("gp")
  def spy(ctx):
    seen.append((ctx.real.shape, ctx.fake.shape))
    return original.fn(ctx)
  monkeypatch.setitem(REGULARIZERS._items, "gp", original._replace(fn=spy))
  c = tiny_config(**{"model.conditioning": "concat", "loss": "wgan", "penalty": "gp"})
  _, state, step, batch = make(c, num_classes=10)
  step(state, batch)
  assert seen == [((16, 28, 28, 1), (16, 28, 28, 1))]  # images, not image + label maps


def test_ema_tracks_generator():
  c = tiny_config(**{"ema_decay": 0.5})
  _, state, step, batch = make(c)
  new, _ = step(state, batch)
  for e0, p1, e1 in zip(jax.tree.leaves(state.ema), jax.tree.leaves(new.g.params),
                        jax.tree.leaves(new.ema)):
    np.testing.assert_allclose(e1, 0.5 * e0 + 0.5 * p1, rtol=1e-6, atol=1e-7)
