"""The project's dropout: the rate it promises, inverted scaling, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import layers as L


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
  # the two 16-bit halves of a word are not copies of each other
  m = np.asarray(L.dropout_keep_mask(jax.random.PRNGKey(3), (20000,), 0.5))
  assert 0.4 < np.mean(m[:10000] == m[10000:]) < 0.6


def test_deterministic_is_identity_and_training_needs_a_key():
  x = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(L.Dropout(0.3)(x, deterministic=True), x)
  with pytest.raises(ValueError, match="needs a key"):
    L.Dropout(0.3)(x, deterministic=False)
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    L.Dropout(1.0)
