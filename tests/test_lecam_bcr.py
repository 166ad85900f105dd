"""LeCam (Tseng et al. 2021) and bCR (Zhao et al. 2021): closed forms, anchors, state."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import regularizers as R
from jaxgan.core.regularizers import lecam
from tests.conftest import tiny_config
from tests.test_regularizers import _step


def ctx(real, fake, state):
  return R.Context(key=jax.random.PRNGKey(0), options={"decay": 0.99}, state=state,
                   real_logits=jnp.asarray(real), fake_logits=jnp.asarray(fake))


def test_first_anchors_are_the_first_batch_means_and_the_term_in_closed_form():
  real, fake = np.array([2.0, 0.0, 1.0]), np.array([-1.0, 3.0])
  init = R.REGULARIZERS.get("lecam").init_state()
  term, state = lecam.lecam(ctx(real, fake, init))
  a_r, a_f = real.mean(), fake.mean()                    # zero-debiased: exactly the means
  expected = (np.mean(np.maximum(real - a_f, 0) ** 2)
              + np.mean(np.maximum(a_r - fake, 0) ** 2))
  assert float(term) == pytest.approx(expected, rel=1e-6)
  assert float(state["count"]) == 1.0
  assert float(state["real"]) == pytest.approx(0.01 * a_r, rel=1e-5)


def test_anchors_are_the_debiased_moving_average_of_batch_means():
  rng = np.random.RandomState(0)
  state = R.REGULARIZERS.get("lecam").init_state()
  means = []
  for _ in range(5):
    real, fake = rng.randn(4), rng.randn(4)
    means.append((real.mean(), fake.mean()))
    _, state = lecam.lecam(ctx(real, fake, state))
  # independent: the weighted mean with weights 0.99^(t-i) normalised to sum 1
  w = 0.99 ** np.arange(4, -1, -1)
  ref_real = np.sum(w * np.array(means)[:, 0]) / w.sum()
  debias = 1 - 0.99 ** 5
  assert float(state["real"]) / debias == pytest.approx(ref_real, rel=1e-5)


def test_gradient_only_through_the_logits_not_the_anchors():
  real, fake = jnp.array([2.0, 0.5]), jnp.array([-1.0, 1.5])
  init = R.REGULARIZERS.get("lecam").init_state()
  g = jax.grad(lambda r: lecam.lecam(ctx(r, fake, init))[0])(real)
  a_f = float(jnp.mean(fake))
  expected = 2 * np.maximum(np.asarray(real) - a_f, 0) / 2   # d/dr mean(relu(r - a_F)^2)
  np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-6)


def test_state_lives_in_the_train_state_and_moves_each_critic_update():
  c = tiny_config(**{"regularizers": ({"name": "lecam"},), "train.n_critic": 2})
  s0, step, batch = _step(c)
  assert float(s0.reg["lecam"]["count"]) == 0.0
  s1, m = step(s0, batch)
  assert float(s1.reg["lecam"]["count"]) == 2.0          # one update per critic step
  assert np.isfinite(float(m["d_lecam"])) and float(m["d_lecam"]) >= 0
  s2, _ = step(s1, batch)
  assert float(s2.reg["lecam"]["count"]) == 4.0


def test_bcr_is_the_squared_change_of_d_under_flip_and_translation():
  from jaxgan.core.regularizers import consistency
  w = jax.random.normal(jax.random.PRNGKey(1), (8, 8, 1))
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))                 # a linear D
  real = jax.random.normal(jax.random.PRNGKey(2), (6, 8, 8, 1))
  fake = jax.random.normal(jax.random.PRNGKey(3), (6, 8, 8, 1))
  key = jax.random.PRNGKey(4)
  c = R.Context(key=key, options={"real": 1.0, "fake": 0.5}, critic=critic, real=real,
                fake=fake, real_logits=critic(real), fake_logits=critic(fake))
  term, _ = consistency.bcr(c)
  k_r, k_f = jax.random.split(key)
  # independent: the transformed batch, then the closed form of the two squared differences
  tr, tf = consistency.transform(k_r, real), consistency.transform(k_f, fake)
  expected = (np.mean((np.asarray(critic(real)) - np.asarray(critic(tr))) ** 2)
              + 0.5 * np.mean((np.asarray(critic(fake)) - np.asarray(critic(tf))) ** 2))
  assert float(term) == pytest.approx(expected, rel=1e-5) and expected > 0
  # a D that ignores position and mirror images (the mean of the image) is not penalised
  # by the flip; translation zero-fills, so use a constant image: D = mean of the centre
  const = jnp.ones((6, 8, 8, 1))
  centre = lambda x: jnp.mean(x[:, 3:5, 3:5, :], axis=(1, 2, 3))
  c0 = R.Context(key=key, options={"real": 1.0, "fake": 1.0}, critic=centre, real=const,
                 fake=const, real_logits=centre(const), fake_logits=centre(const))
  assert float(consistency.bcr(c0)[0]) == 0.0


def test_zcr_terms_in_closed_form_for_a_linear_g_and_d():
  from jaxgan.core.regularizers import latent_consistency as zc
  a = jax.random.normal(jax.random.PRNGKey(1), (3, 4 * 4 * 2))
  generate = lambda z: (z @ a).reshape(z.shape[0], 4, 4, 2)          # a linear G
  w = jax.random.normal(jax.random.PRNGKey(2), (4, 4, 2))
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))                 # a linear D
  z = jax.random.normal(jax.random.PRNGKey(3), (5, 3))
  key, opts = jax.random.PRNGKey(4), {"sigma": 0.03}
  fake = generate(z)
  dz = 0.03 * np.asarray(jax.random.normal(key, z.shape))          # the same draw
  # independent: G(z) - G(z + dz) = -dz A, so D's change is -(dz A) . w
  d_change = (dz @ np.asarray(a)) @ np.asarray(w).reshape(-1)
  c = R.Context(key=key, options=opts, critic=critic, fake=fake, fake_logits=critic(fake),
                z=z, generate=generate)
  assert float(zc.zcr(c)[0]) == pytest.approx(np.mean(d_change ** 2), rel=1e-4)
  g_term, _ = zc.zcr_g(c)
  assert float(g_term) == pytest.approx(-np.mean((dz @ np.asarray(a)) ** 2), rel=1e-4)
  assert float(g_term) < 0    # rewards G for reacting to z


def test_zcr_on_both_sides_in_a_train_step():
  c = tiny_config(**{"regularizers": ("zcr", "zcr_g")})
  s0, step, batch = _step(c)
  _, m = step(s0, batch)
  assert float(m["d_zcr"]) > 0 and float(m["g_zcr_g"]) < 0
  assert float(m["d_loss"]) == pytest.approx(float(m["d_adv_loss"]) + 5 * float(m["d_zcr"]),
                                             rel=1e-5)
  assert float(s0.hparams["reg/zcr_g"]) == 0.5
