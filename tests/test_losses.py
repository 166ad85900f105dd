"""Every registered loss against its closed form on hand-picked logits."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core.losses import LOSSES, bce_with_logits, label_targets

REAL = jnp.array([2.0, -1.0, 0.5])
FAKE = jnp.array([-3.0, 0.0, 1.5])
ONES, ZEROS = jnp.ones(3), jnp.zeros(3)


def sig(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def d_total(name, real=REAL, fake=FAKE, t_real=ONES, t_fake=ZEROS):
  r, f = LOSSES.get(name).d_terms(real, fake, t_real, t_fake)
  return float(r + f)


def test_registered_names():
  assert LOSSES.names() == sorted(["minimax", "non_saturating", "lsgan", "hinge", "wgan",
                                   "ragan", "rpgan"])


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ValueError, match="Unknown loss 'foo'.*hinge.*non_saturating"):
    LOSSES.get("foo")


def test_bce_matches_log_form_and_is_stable():
  l, t = jnp.array([-2.0, 0.0, 3.0]), jnp.array([1.0, 0.0, 0.3])
  p = sig(l)
  want = -(t * np.log(p) + (1 - t) * np.log(1 - p))
  np.testing.assert_allclose(bce_with_logits(l, t), want, rtol=1e-6)
  big = bce_with_logits(jnp.array([-200.0, 200.0]), jnp.array([1.0, 0.0]))
  np.testing.assert_allclose(big, [200.0, 200.0], rtol=1e-6)


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_gan_d_loss(name):
  want = -np.mean(np.log(sig(REAL))) - np.mean(np.log(1 - sig(FAKE)))
  assert d_total(name) == pytest.approx(want, rel=1e-6)


def test_minimax_g_loss_is_log_one_minus_d():
  want = np.mean(np.log(1 - sig(FAKE)))
  assert float(LOSSES.get("minimax").g_loss(FAKE, REAL)) == pytest.approx(want, rel=1e-6)


def test_non_saturating_g_loss_is_minus_log_d():
  want = -np.mean(np.log(sig(FAKE)))
  assert float(LOSSES.get("non_saturating").g_loss(FAKE, REAL)) == pytest.approx(want, rel=1e-6)


def test_optimal_discriminator_value():
  # With D* = p_data / (p_data + p_g) the minimax value is -log 4 + 2 JSD; for p_g = p_data,
  # D* = 1/2 everywhere (logit 0) and the D loss (negated value) is log 4.
  assert d_total("minimax", jnp.zeros(3), jnp.zeros(3)) == pytest.approx(math.log(4), rel=1e-6)


def test_saturation_gradients():
  # When D confidently rejects fakes (logit -10), minimax's G gradient vanishes while the
  # non-saturating one stays ~1 (Goodfellow et al. 2014, sec. 3).
  l = jnp.array([-10.0])
  g_mm = jax.grad(lambda x: LOSSES.get("minimax").g_loss(x, x))(l)
  g_ns = jax.grad(lambda x: LOSSES.get("non_saturating").g_loss(x, x))(l)
  assert abs(float(g_mm[0])) < 1e-4
  assert float(g_ns[0]) == pytest.approx(-1.0, abs=1e-4)


def test_lsgan():
  want_d = 0.5 * np.mean((np.asarray(REAL) - 1) ** 2) + 0.5 * np.mean(np.asarray(FAKE) ** 2)
  assert d_total("lsgan") == pytest.approx(want_d, rel=1e-6)
  want_g = 0.5 * np.mean((np.asarray(FAKE) - 1) ** 2)
  assert float(LOSSES.get("lsgan").g_loss(FAKE, REAL)) == pytest.approx(want_g, rel=1e-6)


def test_hinge():
  # relu(1 - [2, -1, .5]) = [0, 2, .5]; relu(1 + [-3, 0, 1.5]) = [0, 1, 2.5]
  assert d_total("hinge") == pytest.approx(2.5 / 3 + 3.5 / 3, rel=1e-6)
  assert float(LOSSES.get("hinge").g_loss(FAKE, REAL)) == pytest.approx(-(-1.5) / 3, rel=1e-6)


def test_wgan():
  assert d_total("wgan") == pytest.approx(float(np.mean(FAKE) - np.mean(REAL)), rel=1e-6)
  assert float(LOSSES.get("wgan").g_loss(FAKE, REAL)) == pytest.approx(-float(np.mean(FAKE)), rel=1e-6)
  # The critic's gradient is -1/B on every real logit and +1/B on every fake one.
  gr, gf = jax.grad(lambda r, f: sum(LOSSES.get("wgan").d_terms(r, f, ONES, ZEROS)),
                    argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, -np.ones(3) / 3)
  np.testing.assert_allclose(gf, np.ones(3) / 3)


def test_ragan():
  r, f = np.asarray(REAL, np.float64), np.asarray(FAKE, np.float64)
  want_d = -np.mean(np.log(sig(r - f.mean()))) - np.mean(np.log(1 - sig(f - r.mean())))
  want_g = -np.mean(np.log(sig(f - r.mean()))) - np.mean(np.log(1 - sig(r - f.mean())))
  assert d_total("ragan") == pytest.approx(want_d, rel=1e-6)
  assert float(LOSSES.get("ragan").g_loss(FAKE, REAL)) == pytest.approx(want_g, rel=1e-6)


def test_rpgan_pairs_each_generated_example_with_one_real():
  r, f = np.asarray(REAL, np.float64), np.asarray(FAKE, np.float64)
  # D: -E[log sigmoid(D(x_i) - D(G(z_i)))]; G: -E[log sigmoid(D(G(z_i)) - D(x_i))]
  want_d = -np.mean(np.log(sig(r - f)))
  want_g = -np.mean(np.log(sig(f - r)))
  assert d_total("rpgan") == pytest.approx(want_d, rel=1e-6)
  assert float(LOSSES.get("rpgan").g_loss(FAKE, REAL)) == pytest.approx(want_g, rel=1e-6)
  # pairing, not averaging: permuting the fakes changes the loss
  assert d_total("rpgan", fake=FAKE[::-1]) != pytest.approx(want_d, rel=1e-3)
  # G's gradient does not flow into the real logits
  g_real = jax.grad(lambda real: LOSSES.get("rpgan").g_loss(FAKE, real))(REAL)
  np.testing.assert_array_equal(g_real, np.zeros(3))
  gf = jax.grad(lambda fake: LOSSES.get("rpgan").g_loss(fake, REAL))(FAKE)
  np.testing.assert_allclose(gf, -(1 - sig(f - r)) / 3, rtol=1e-5)


def test_label_targets():
  key = jax.random.PRNGKey(0)
  t_r, t_f = label_targets(key, 1000)
  assert np.all(t_r == 1) and np.all(t_f == 0)
  t_r, t_f = label_targets(key, 1000, smoothing=0.1)
  np.testing.assert_allclose(t_r, 0.9)
  t_r, t_f = label_targets(key, 1000, noise=0.1)
  assert 1.0 <= t_r.min() and t_r.max() <= 1.1 and -0.1 <= t_f.min() and t_f.max() <= 0.0
  assert float(t_r.std()) > 0.02  # really random, about 0.1/sqrt(12)
  t_r, t_f = label_targets(key, 10000, flip=0.25)
  frac = float(jnp.mean(t_r == 0))
  assert 0.22 < frac < 0.28 and np.all((t_r == 0) == (t_f == 1))
