"""The project's dropout: the rate it promises, inverted scaling, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core.models import layers as L


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.1])
def test_keep_fraction_and_scaling(rate):
  x = jnp.ones((64, 32, 32, 16))
  y = L.Dropout(rate)(x, deterministic=False, rngs=jax.random.PRNGKey(0))
  kept = np.asarray(y != 0)
  n = kept.size
  # binomial: 5 standard deviations of the kept fraction
  assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
  np.testing.assert_allclose(np.asarray(y)[kept], 1.0 / (1.0 - rate), rtol=1e-6)
  assert float(jnp.mean(y)) == pytest.approx(1.0, abs=0.01)  # expectation preserved


def test_mask_is_a_function_of_the_key_and_masks_differ_by_position():
  d = L.Dropout(0.5)
  x = jnp.ones((4, 7, 5, 3))  # odd element count: the last half-word is dropped cleanly
  a = d(x, deterministic=False, rngs=jax.random.PRNGKey(1))
  b = d(x, deterministic=False, rngs=jax.random.PRNGKey(1))
  c = d(x, deterministic=False, rngs=jax.random.PRNGKey(2))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(np.asarray(a), np.asarray(c))


def _corr(a, b):
  a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
  return np.corrcoef(a, b)[0, 1]


def test_mask_statistics_independent_across_positions_and_keys():
  """The counter-based mask: no correlation between neighbours (along every axis of an
  NHWC activation), between keys, or between successive keys from one split; the number
  of kept elements in each 2x2 block is binomial."""
  shape = (32, 16, 16, 64)
  n = np.prod(shape)
  bound = 5 / np.sqrt(n)  # 5 standard deviations of a correlation estimate around 0
  k1, k2 = jax.random.split(jax.random.PRNGKey(7))
  m = np.asarray(L.dropout_keep_mask(k1, shape, 0.5))
  for axis in range(4):
    a, b = np.take(m, range(0, shape[axis] - 1), axis), np.take(m, range(1, shape[axis]), axis)
    assert abs(_corr(a, b)) < bound, axis
  assert abs(_corr(m, np.asarray(L.dropout_keep_mask(k2, shape, 0.5)))) < bound
  assert abs(_corr(m, np.asarray(L.dropout_keep_mask(jax.random.PRNGKey(8), shape, 0.5)))) < bound
  # kept count per 2x2 spatial block ~ Binomial(4, 1/2): chi-square with 4 dof, p > 1e-6
  blocks = m.reshape(32, 8, 2, 8, 2, 64).sum(axis=(2, 4)).ravel()
  observed = np.bincount(blocks, minlength=5)
  expected = len(blocks) * np.array([1, 4, 6, 4, 1]) / 16
  chi2 = float(np.sum((observed - expected) ** 2 / expected))
  assert chi2 < 33.4, chi2  # the 1 - 1e-6 quantile of chi-square(4)


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_mask_keep_rate_exact_in_expectation(rate):
  m = np.asarray(L.dropout_keep_mask(jax.random.PRNGKey(11), (1 << 20,), rate))
  assert abs(m.mean() - (1 - rate)) < 5 * np.sqrt(max(rate * (1 - rate), 1e-12) / m.size) + 1e-9


def test_deterministic_is_identity_and_training_needs_a_key():
  x = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(L.Dropout(0.3)(x, deterministic=True), x)
  with pytest.raises(ValueError, match="needs a key"):
    L.Dropout(0.3)(x, deterministic=False)
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    L.Dropout(1.0)
