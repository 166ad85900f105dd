"""R3GAN2 (jaxgan/core/models/r3gan2.py) on the magnitude-preserving layers
(jaxgan/core/models/mp_layers.py): what each layer promises, the presets' parameter counts
against the reference code (IFeelBloated/R3GAN2 at 3b04752d, instantiated with PyTorch in a
side venv: counts below), and a few training steps."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import r3gan2 as r3gan2_cfg
from jaxgan.base.errors import UserError
from jaxgan.core import models, state as state_lib
from jaxgan.core.models import mp_layers as mp
from jaxgan.core.models import r3gan2
from jaxgan.run import train, validate
from tests.conftest import set_fields, tiny_config

# (G, D) parameters of the reference networks built with each preset (torch, counted with
# sum(p.numel() for p in net.parameters()); the alphas and G's output gain included)
REFERENCE = {
    "cifar10": ((32, 32, 3), 10, 17_335_425, 17_720_832),
    "ffhq64": ((64, 64, 3), 0, 22_653_441, 22_572_544),
    "ffhq256": ((256, 256, 3), 0, 24_855_425, 24_771_456),
    "imagenet32": ((32, 32, 3), 1000, 60_947_969, 63_718_400),
    "imagenet64": ((64, 64, 3), 1000, 80_104_961, 82_867_200),
}


@pytest.mark.parametrize("variant", sorted(REFERENCE))
def test_preset_parameter_counts_equal_the_reference(variant):
  shape, classes, want_g, want_d = REFERENCE[variant]
  c = r3gan2_cfg.get_config(variant)
  nets = jax.eval_shape(lambda: tuple(
      nnx.state(m, nnx.Param) for m in models.build(c.model, shape, classes, 0)))
  got = tuple(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(n)) for n in nets)
  assert got == (want_g, want_d)


def test_mp_lrelu_gain_gives_unit_variance():
  """The reference's constant is 1 / std(lrelu(x)), x ~ N(0, 1): E[f^2] = (1 + a^2) / 2,
  E[f] = (1 - a) / sqrt(2 pi)."""
  a = 0.2
  assert mp.LRELU_GAIN == pytest.approx(1.5464600603608725, rel=1e-15)
  assert mp.LRELU_GAIN == pytest.approx(
      1 / math.sqrt((1 + a * a) / 2 - (1 - a) ** 2 / (2 * math.pi)), rel=1e-15)
  x = jax.random.normal(jax.random.PRNGKey(0), (2_000_000,))
  assert float(jnp.var(mp.lrelu(x))) == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("layer", ["conv1x1", "conv3x3_grouped", "linear", "biased", "noisy"])
def test_layers_map_unit_inputs_to_unit_outputs(layer):
  """Unit-variance inputs give outputs of second moment 1 per channel (the normalised row
  has norm 1, bias and noise columns included)."""
  rngs = nnx.Rngs(1)
  x = jax.random.normal(jax.random.PRNGKey(2), (64, 8, 8, 64))
  f = {"conv1x1": lambda: mp.Conv(64, 48, 1, rngs=rngs),
       "conv3x3_grouped": lambda: mp.Conv(64, 64, 3, groups=2, rngs=rngs),
       "linear": lambda: mp.Linear(64, 48, rngs=rngs),
       "biased": lambda: mp.BiasedPointwise(64, 48, rngs=rngs),
       "noisy": lambda: mp.BiasedPointwise(64, 48, noise=True, rngs=rngs)}[layer]()
  if layer == "conv3x3_grouped":
    y = f(jax.random.normal(jax.random.PRNGKey(3), (64, 32, 32, 64)))[:, 1:-1, 1:-1]
  elif layer == "noisy":
    y = f(x, noise=jax.random.normal(jax.random.PRNGKey(4), (64, 8, 8, 1)))
  else:
    y = f(x)
  moments = np.asarray(jnp.mean(y.reshape(-1, y.shape[-1]) ** 2, axis=0))
  np.testing.assert_allclose(moments, 1.0, atol=0.08)
  assert abs(float(moments.mean()) - 1.0) < 0.02


def test_forced_weight_norm_restores_row_norms_after_an_optimizer_step():
  """An Adam step moves the weights off the sphere; the projection (applied by the train
  step after every update) puts every MPWeight row back at RMS 1 (mean 0 when centered)
  and leaves the other parameters (alphas, G's gain) alone."""
  g, _ = models.build(r3gan2_cfg.get_config("fashion").model, (32, 32, 1), 0, 0)
  project = g.weight_projection()
  params = nnx.state(g, nnx.Param)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3) + p, params)
  tx = optax.adam(0.5)
  updates, _ = tx.update(grads, tx.init(params), params)
  stepped = optax.apply_updates(params, updates)
  out = project(stepped)
  kinds = {jax.tree_util.keystr(p): (v.get_metadata().get("centered") if isinstance(
      v, mp.MPWeight) else None) for p, v in jax.tree_util.tree_flatten_with_path(
          nnx.state(g, nnx.Param), is_leaf=lambda v: isinstance(v, nnx.Variable))[0]}
  flat_out = dict(jax.tree_util.tree_flatten_with_path(out)[0])
  flat_in = dict(jax.tree_util.tree_flatten_with_path(stepped)[0])
  checked = 0
  for path, w in flat_out.items():
    key = jax.tree_util.keystr(path).removesuffix(".value")
    if kinds[key] is None:
      np.testing.assert_array_equal(w, flat_in[path])
      continue
    rows = np.asarray(w).reshape(-1, w.shape[-1])
    before = np.asarray(flat_in[path]).reshape(-1, w.shape[-1])
    assert not np.allclose(np.sqrt(np.mean(before ** 2, axis=0)), 1.0, atol=1e-3)
    np.testing.assert_allclose(np.sqrt(np.mean(rows ** 2, axis=0)), 1.0, atol=1e-3)
    if kinds[key]:
      np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-5)
    checked += 1
  assert checked >= 10


def test_blocks_start_switched_off_and_the_variance_adds_up():
  stage = r3gan2.Stage(32, 3, 2.0, noise=False, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 32))
  y, var = stage(x)
  np.testing.assert_array_equal(y, x)                    # alpha = tanh(0) = 0
  np.testing.assert_allclose(var, 1.0)
  for i, block in enumerate(stage.blocks):
    block.alpha[...] = jnp.full((32,), 0.5 * (i + 1))
  _, var = stage(x)
  want = 1.0 + sum(math.tanh(0.5 * (i + 1)) ** 2 for i in range(3))
  np.testing.assert_allclose(var, want, rtol=1e-6)


def _torch_pixel_shuffle_up(x_nchw, cout):
  """The reference's InplaceUpsampler before its blur, in NCHW numpy: repeat_interleave
  each channel, then pixel_shuffle(2): out[c, 2h+i, 2w+j] = in[4c + 2i + j, h, w]."""
  n, c, h, w = x_nchw.shape
  x = np.repeat(x_nchw, 4 * cout // c, axis=1)
  out = np.zeros((n, cout, 2 * h, 2 * w), x.dtype)
  for i in range(2):
    for j in range(2):
      out[:, :, i::2, j::2] = x[:, [4 * k + 2 * i + j for k in range(cout)]]
  return out


def _blur_nchw(x):
  k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
  p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
  return sum(k[a, b] * p[:, :, a:a + x.shape[2], b:b + x.shape[3]]
             for a in range(3) for b in range(3))


def test_in_place_resampling_matches_the_reference_channel_order():
  x = np.random.RandomState(0).randn(2, 8, 4, 4).astype(np.float32)   # NCHW, 8 channels
  for cout in (4, 16):
    want = _blur_nchw(_torch_pixel_shuffle_up(x, cout))
    got = r3gan2.upsample(jnp.asarray(x.transpose(0, 2, 3, 1)), cout)
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, atol=1e-5)
  # down: blur, pixel_unshuffle (c -> 4c + 2i + j), mean over 4 cin / cout
  big = np.random.RandomState(1).randn(2, 8, 8, 8).astype(np.float32)
  b = _blur_nchw(big)
  un = np.stack([b[:, :, i::2, j::2] for i in range(2) for j in range(2)], axis=2)
  un = un.reshape(2, 32, 4, 4)
  want = un.reshape(2, 16, 2, 4, 4).mean(axis=2)
  got = r3gan2.downsample(jnp.asarray(big.transpose(0, 2, 3, 1)), 16)
  np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, atol=1e-5)


def _tiny(**over):
  return tiny_config(**{"model.arch": "r3gan2", "model.r3gan2.widths": (32, 32),
                        "model.r3gan2.blocks": (1, 1), "data.image_size": 16,
                        "loss": "rpgan", "optim.g.b1": 0.0, "optim.d.b1": 0.0,
                        "regularizers": ({"name": "r1", "weight": 0.05},
                                         {"name": "r2", "weight": 0.05}), **over})


def test_samples_are_a_function_of_z_and_training_noise_of_the_key():
  c = _tiny(**{"model.conditioning": "projection"})
  gan, st = state_lib.create(c, (16, 16, 1), 10)
  # the blocks (where the noise enters) start switched off: switch them on
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: jnp.full_like(v, 0.5) if "alpha" in jax.tree_util.keystr(p) else v,
      st.g.params)
  st = st.replace(g=st.g.replace(params=params))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, c.model.latent_dim))
  labels = jnp.arange(4)
  a = gan.generate(st.g.params, st.g.stats, z, labels, train=False)[0]
  b = gan.generate(st.g.params, st.g.stats, z[:2], labels[:2], train=False)[0]
  np.testing.assert_allclose(a[:2], b, atol=1e-6)        # not a function of the batch
  k1 = gan.generate(st.g.params, st.g.stats, z, labels, train=True, key=jax.random.PRNGKey(1))[0]
  k2 = gan.generate(st.g.params, st.g.stats, z, labels, train=True, key=jax.random.PRNGKey(2))[0]
  assert a.shape == (4, 16, 16, 1) and not np.allclose(k1, k2)
  logits, _, _ = gan.discriminate(st.d.params, st.d.stats, a, labels, train=True)
  assert logits.shape == (4,) and np.all(np.isfinite(logits))


def test_a_few_training_steps_keep_the_weights_normalised(tmp_path):
  state = train.train_and_evaluate(_tiny(**{"train.steps": 3, "train.sample_every": 0,
                                            "phema.sigma_rels": (0.05, 0.1)}),
                                   str(tmp_path / "r"))
  for net in (state.g.params, state.d.params):
    for path, w in jax.tree_util.tree_flatten_with_path(net)[0]:
      name = jax.tree_util.keystr(path)
      assert np.all(np.isfinite(w)), name
      if "weight" in name:
        rms = np.sqrt(np.mean(np.asarray(w).reshape(-1, w.shape[-1]) ** 2, axis=0))
        np.testing.assert_allclose(rms, 1.0, atol=1e-3, err_msg=name)
  assert len(state.phema) == 2


@pytest.mark.parametrize("override,match", [
    ({"data.image_size": 24}, "build 16 px images"),
    ({"model.r3gan2.widths": (48, 48)}, "multiples of 32"),
    ({"model.r3gan2.blocks": (1,)}, "one entry per stage"),
])
def test_impossible_settings_are_refused(override, match):
  with pytest.raises(UserError, match=match):
    validate.validate(_tiny(**override))
