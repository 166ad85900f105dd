"""Path length regularization of G (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", sec. 3.2).

Encourages a fixed-size step in the latent to give a fixed-magnitude change in the image:
with y ~ N(0, I) / sqrt(H W) an image-space direction, the Jacobian-vector length
a = ||J_z^T y|| should stay at its running mean `m`, penalising E[(a - m)^2]. `m` is an
exponential moving average of E[a] (decay 0.01) kept in the train state. Constants are
StyleGAN2's: weight 2, computed on every 4th G update (`every`), on half the batch
(`batch_shrink`).

StyleGAN2 differentiates with respect to the intermediate latents w of its mapping
network: for a style-based G (one with `map` and `synthesize`, jaxgan/core/models/stylegan2.py)
the ws [B, num_ws, w_dim] of a fresh forward (with style mixing, as StyleGAN2-ADA's Gpl)
are the input and a = sqrt(mean over the ws of ||J_w^T y||^2) (the reference's
`square().sum(2).mean(1).sqrt()`). Architectures without a mapping network (MLP, DCGAN)
use their input z, `Context.z`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer


def path_lengths(generate, z, key):
  """||J^T y|| per example, y ~ N(0, I) / sqrt(H W) in image space; returns (lengths,
  images). For z [B, L, D] (StyleGAN2's ws), the root of the mean over L of the squared
  norms over D."""
  images, vjp = jax.vjp(generate, z)
  h, w = images.shape[1], images.shape[2]
  y = jax.random.normal(key, images.shape, images.dtype) / jnp.sqrt(float(h * w))
  (grad_z,) = vjp(y)
  sq = jnp.square(grad_z)
  if sq.ndim == 3:
    return jnp.sqrt(jnp.mean(jnp.sum(sq, axis=-1), axis=-1)), images
  return jnp.sqrt(jnp.sum(sq.reshape(z.shape[0], -1), axis=-1)), images


def _inputs(ctx: Context, n: int):
  """(input, generate) of the penalty: ws and G's synthesis network for a style-based G,
  else z and G."""
  z = ctx.z[:n]
  if ctx.apply_g is None or not ctx.apply_g(lambda g: hasattr(g, "synthesize")):
    return z, ctx.generate
  k_map, k_noise = jax.random.split(jax.random.fold_in(ctx.key, 1))
  labels = None if ctx.labels is None else ctx.labels[:n]
  ws = ctx.apply_g(lambda g: g.map(z, labels, train=True, key=k_map))
  return ws, lambda w: ctx.apply_g(lambda g: g.synthesize(w, k_noise))


def path_length_penalty(ctx: Context):
  shrink = int(ctx.options["batch_shrink"])
  x, generate = _inputs(ctx, max(1, ctx.z.shape[0] // shrink))
  lengths, _ = path_lengths(generate, x, ctx.key)
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
