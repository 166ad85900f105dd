"""Gradient penalties against critics whose input gradients are known in closed form."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgan.core import optim
from jaxgan.core.regularizers import REGULARIZERS
from jaxgan.core.regularizers import gradient_penalties as GP
from jaxgan.core.regularizers.gradient_penalties import grad_norms

PENALTY = {"gp": GP.gradient_penalty, "r1": GP.r1_penalty, "r2": GP.r2_penalty,
           "dragan": GP.dragan_penalty}

KEY = jax.random.PRNGKey(3)
SHAPE = (5, 4, 4, 2)
REAL = jax.random.normal(jax.random.PRNGKey(1), SHAPE)
FAKE = jax.random.normal(jax.random.PRNGKey(2), SHAPE)
W = jax.random.normal(jax.random.PRNGKey(4), SHAPE[1:])


def linear_critic(x):
  return jnp.sum(x * W, axis=(1, 2, 3))


def quadratic_critic(x):  # f(x) = 1/2 ||x||^2, grad = x
  return 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))


def per_example_norm(x):
  return np.linalg.norm(np.asarray(x).reshape(x.shape[0], -1), axis=1)


def test_registered_names():
  assert {"gp", "r1", "r2", "dragan"} <= set(REGULARIZERS.names())
  for name in PENALTY:
    assert REGULARIZERS.get(name).sides == ("d",) and REGULARIZERS.get(name).per_example


def test_unknown_penalty_lists_valid_names():
  listed = ", ".join(sorted(REGULARIZERS.names()))
  with pytest.raises(ValueError, match=f"Did you mean 'gp'\\? Valid regularizer names: {listed}\\.$"):
    REGULARIZERS.get("gp2")


def test_gp_linear_critic_is_independent_of_alpha():
  want = (float(jnp.linalg.norm(W)) - 1.0) ** 2
  for k in range(3):
    got = PENALTY["gp"](linear_critic, REAL, FAKE, jax.random.PRNGKey(k))
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_gp_quadratic_critic_uses_uniform_per_example_alpha():
  got = PENALTY["gp"](quadratic_critic, REAL, FAKE, KEY)
  # Reproduce alpha: one U(0,1) draw per example, broadcast over the pixels.
  alpha = np.asarray(jax.random.uniform(KEY, (SHAPE[0], 1, 1, 1)))
  x_hat = np.asarray(REAL) + alpha * (np.asarray(FAKE) - np.asarray(REAL))
  want = np.mean((per_example_norm(x_hat) - 1.0) ** 2)
  assert float(got) == pytest.approx(want, rel=1e-5)


def test_r1_r2_quadratic_critic():
  r1 = PENALTY["r1"](quadratic_critic, REAL, FAKE, KEY)
  r2 = PENALTY["r2"](quadratic_critic, REAL, FAKE, KEY)
  assert float(r1) == pytest.approx(0.5 * np.mean(per_example_norm(REAL) ** 2), rel=1e-5)
  assert float(r2) == pytest.approx(0.5 * np.mean(per_example_norm(FAKE) ** 2), rel=1e-5)


def test_r1_linear_critic():
  r1 = PENALTY["r1"](linear_critic, REAL, FAKE, KEY)
  assert float(r1) == pytest.approx(0.5 * float(jnp.sum(W ** 2)), rel=1e-5)


def test_dragan_linear_critic():
  got = PENALTY["dragan"](linear_critic, REAL, FAKE, KEY)
  assert float(got) == pytest.approx((float(jnp.linalg.norm(W)) - 1.0) ** 2, rel=1e-5)


def test_dragan_perturbs_within_half_std_of_the_data():
  seen = []
  def spy(x):
    jax.debug.callback(lambda v: seen.append(np.asarray(v)), x)
    return quadratic_critic(x)
  PENALTY["dragan"](spy, REAL, FAKE, KEY)
  delta = np.asarray(seen[0]) - np.asarray(REAL)
  assert delta.min() >= 0 and delta.max() <= 0.5 * float(jnp.std(REAL)) + 1e-6
  assert delta.max() > 0


@pytest.mark.parametrize("name", ["gp", "r1", "r2", "dragan"])
def test_constant_critic_gives_finite_value_and_gradient(name):
  def constant_critic_with_params(p, x):
    return jnp.zeros(x.shape[0]) * p + 0.0 * jnp.sum(x, axis=(1, 2, 3)) * p
  fn = PENALTY[name]
  value, grad = jax.value_and_grad(
      lambda p: fn(lambda x: constant_critic_with_params(p, x), REAL, FAKE, KEY))(1.0)
  assert np.isfinite(float(value)) and np.isfinite(float(grad))
  assert float(value) == pytest.approx(1.0 if name in ("gp", "dragan") else 0.0)


def test_grad_norms_are_per_example():
  # A critic that is linear per example with different weights per row of the batch would
  # be coupled; with the sum trick each example's norm is ||W|| regardless of the others.
  n = grad_norms(linear_critic, REAL)
  np.testing.assert_allclose(n, np.full(SHAPE[0], float(jnp.linalg.norm(W))), rtol=1e-5)


def test_clip_projection_bounds_every_leaf():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array([[0.3, -0.02]])}}
  section = lambda clip: ml_collections.ConfigDict({"clip": clip})   # as config.optim.d
  assert optim.projection(section(0.0)) is None
  out = optim.projection(section(0.01))(params)
  np.testing.assert_allclose(optim.projection(section(0.0), "clip", 0.01)(params)["a"],
                             out["a"])
  np.testing.assert_allclose(out["a"], [-0.01, 0.005, 0.01])
  np.testing.assert_allclose(out["b"]["c"], [[0.01, -0.01]])
