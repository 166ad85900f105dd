"""Gradient penalties of the discriminator: gp, r1, r2, dragan.

Each is `fn(critic, real, fake, key) -> scalar` (unweighted), where `critic(x) -> logits[B]`
closes over the discriminator parameters and labels, so the gradient is taken with respect
to the image only, and registered as a D-side regularizer (jaxgan/core/regularizers).

R1 and R2 take the option `fd_sigma` > 0: instead of the input gradient, the
finite-difference estimate GAT uses (Hyun et al. 2025; hse1032/GAT@21a2dd09,
losses/Rp_PT_loss.py approximated_gradient_penalty): ||grad D(x)||^2 ~ (D(x + s delta) -
D(x))^2 / s^2 with one delta ~ N(0, I) per step, unbiased as s -> 0 since E[(g . delta)^2] =
||g||^2. The perturbed input goes through the same augmentation and D randomness as the
loss's own evaluation of x (ctx.critic_real / critic_fake), and D(x) is that evaluation's
logit, not detached: one extra D forward and no double backward.

Input gradients are per example: grad of sum_i D(x_i) w.r.t. x gives every example's
gradient in one backward pass as long as D has no cross-example coupling; the train step
refuses these penalties with a BatchNorm discriminator for that reason.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer

Array = jax.Array
Critic = Callable[[Array], Array]


def input_gradients(critic: Critic, x: Array) -> Array:
  """d critic(x_i) / d x_i for every example i (critic must not couple examples)."""
  return jax.grad(lambda v: jnp.sum(critic(v)))(x)


def grad_norms(critic: Critic, x: Array) -> Array:
  """Per-example L2 norms of the input gradient; finite, with a finite gradient, at 0."""
  g = input_gradients(critic, x).reshape((x.shape[0], -1))
  return optax.safe_norm(g, min_norm=0.0, axis=-1)


def _uniform_per_example(key, x):
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)


def gradient_penalty(critic: Critic, real: Array, fake: Array, key: Array) -> Array:
  """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2],
  x_hat = x + alpha (G(z) - x), alpha ~ U(0, 1) per example."""
  alpha = _uniform_per_example(key, real)
  x_hat = real + alpha * (fake - real)
  return jnp.mean((grad_norms(critic, x_hat) - 1.0) ** 2)


def r1_penalty(critic: Critic, real: Array, fake: Array, key: Array) -> Array:
  """R1 (Mescheder et al. 2018): 1/2 E_real[||grad D(x)||^2]; weight = gamma."""
  del fake, key
  return 0.5 * jnp.mean(grad_norms(critic, real) ** 2)


def r2_penalty(critic: Critic, real: Array, fake: Array, key: Array) -> Array:
  """R2 (Mescheder et al. 2018): 1/2 E_fake[||grad D(G(z))||^2]; weight = gamma."""
  del real, key
  return 0.5 * jnp.mean(grad_norms(critic, fake) ** 2)


def dragan_penalty(critic: Critic, real: Array, fake: Array, key: Array) -> Array:
  """DRAGAN (Kodali et al. 2017): E[(||grad D(x_hat)|| - 1)^2] around the data, with
  x_hat = x + alpha * delta, delta = 0.5 std(x) U(0, 1) per pixel, alpha ~ U(0, 1)."""
  del fake
  k_delta, k_alpha = jax.random.split(key)
  delta = 0.5 * jnp.std(real) * jax.random.uniform(k_delta, real.shape, real.dtype)
  x_hat = real + _uniform_per_example(k_alpha, real) * delta
  return jnp.mean((grad_norms(critic, x_hat) - 1.0) ** 2)


def finite_difference_penalty(critic_same: Critic, x: Array, logits: Array, sigma: float,
                              key: Array) -> Array:
  """1/2 E[(D(x + sigma delta) - D(x))^2] / sigma^2, delta ~ N(0, I): R1 (x real) or R2 (x
  generated) by finite differences. `critic_same` replays the evaluation that gave
  `logits` = D(x) (same augmentation, same noise), so only sigma delta differs."""
  delta = jax.random.normal(key, x.shape, x.dtype)
  diff = critic_same(x + sigma * delta) - logits
  return 0.5 * jnp.mean(diff * diff) / (sigma * sigma)


def _as_regularizer(penalty, weight: float) -> Regularizer:
  def fn(ctx: Context):
    return penalty(ctx.critic, ctx.real, ctx.fake, ctx.key), ctx.state
  return Regularizer(fn, sides=("d",), weight=weight, per_example=True)


def _r1_r2(exact, real: bool) -> Regularizer:
  """R1 (real) or R2 (fake): exact, or by finite differences with options['fd_sigma']."""
  def fn(ctx: Context):
    sigma = float(ctx.options["fd_sigma"])
    if sigma <= 0:
      return exact(ctx.critic, ctx.real, ctx.fake, ctx.key), ctx.state
    if real:
      return finite_difference_penalty(ctx.critic_real, ctx.real, ctx.real_logits, sigma,
                                       ctx.key), ctx.state
    return finite_difference_penalty(ctx.critic_fake, ctx.fake, ctx.fake_logits, sigma,
                                     ctx.key), ctx.state
  return Regularizer(fn, sides=("d",), weight=10.0, per_example=True,
                     options={"fd_sigma": 0.0})


REGULARIZERS.register("gp", _as_regularizer(gradient_penalty, 10.0))
REGULARIZERS.register("r1", _r1_r2(r1_penalty, True))
REGULARIZERS.register("r2", _r1_r2(r2_penalty, False))
REGULARIZERS.register("dragan", _as_regularizer(dragan_penalty, 10.0))
