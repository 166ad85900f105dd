"""Path length regularization of G (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", sec. 3.2).

Encourages a fixed-size step in the latent to give a fixed-magnitude change in the image:
with y ~ N(0, I) / sqrt(H W) an image-space direction, the Jacobian-vector length
a = ||J_z^T y|| should stay at its running mean `m`, penalising E[(a - m)^2]. `m` is an
exponential moving average of E[a] (decay 0.01) kept in the train state. Constants are
StyleGAN2's: weight 2, computed on every 4th G update (`every`), on half the batch
(`batch_shrink`).

StyleGAN2 differentiates with respect to the intermediate latents w of its mapping
network; architectures without one (MLP, DCGAN) use their input z, which is what
`Context.z` holds; an architecture with a mapping network passes its w as `z` and its
synthesis network as `generate`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.regularizers import REGULARIZERS, Context, Regularizer


def path_lengths(generate, z, key):
  """||J^T y|| per example, y ~ N(0, I) / sqrt(H W) in image space; returns (lengths, images)."""
  images, vjp = jax.vjp(generate, z)
  h, w = images.shape[1], images.shape[2]
  y = jax.random.normal(key, images.shape, images.dtype) / jnp.sqrt(float(h * w))
  (grad_z,) = vjp(y)
  return jnp.sqrt(jnp.sum(jnp.square(grad_z.reshape(z.shape[0], -1)), axis=-1)), images


def path_length_penalty(ctx: Context):
  shrink = int(ctx.options["batch_shrink"])
  z = ctx.z[:max(1, ctx.z.shape[0] // shrink)]
  lengths, _ = path_lengths(ctx.generate, z, ctx.key)
  mean = ctx.state["mean"]
  # As in StyleGAN2-ADA, the penalty uses the updated mean (gradient flows through its
  # 0.01 share of E[a]); the state stores it without gradient.
  new_mean = mean + ctx.options["decay"] * (jnp.mean(lengths) - mean)
  penalty = jnp.mean(jnp.square(lengths - new_mean))
  return penalty, {"mean": jax.lax.stop_gradient(new_mean)}


REGULARIZERS.register("path_length", Regularizer(
    path_length_penalty, sides=("g",), weight=2.0,
    options={"decay": 0.01, "batch_shrink": 2},
    init_state=lambda: {"mean": jnp.zeros((), jnp.float32)}))
