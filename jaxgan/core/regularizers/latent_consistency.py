"""Latent consistency regularization, zCR (Zhao, Zhang, Chen, Singh & Zhang 2021, "Improved
Consistency Regularization for GANs", AAAI, sec. 3.2).

A small perturbation of the latent, z' = z + dz with dz ~ N(0, sigma^2) (sigma = 0.03),
should change D's verdict little, while G should stay sensitive to it (against mode
collapse). Two terms, one per network, each an entry of `config.regularizers`:

  zcr    (D side)   lambda_dis E_z ||D(G(z)) - D(G(z'))||^2                default 5
  zcr_g  (G side)  -lambda_gen E_z ||G(z) - G(z')||^2                      default 0.5

with the paper's defaults. G(z) on the D side is the batch D's loss already saw (its logits
are reused), G(z') one more generator pass without gradient; on the G side both images are
differentiated. The squared image distance is the mean over pixels and channels, so the
weight does not depend on the resolution (as PyTorch-StudioGAN does it); the paper writes
the plain squared norm, which would scale lambda_gen with the image size. Use both entries
together for the paper's method; each works alone.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer


def perturbed(key, z, sigma):
  return z + sigma * jax.random.normal(key, z.shape, z.dtype)


def zcr(ctx: Context):
  z2 = perturbed(ctx.key, ctx.z, ctx.options["sigma"])
  d2 = ctx.critic(ctx.generate(z2)).reshape(-1)
  return jnp.mean(jnp.square(ctx.fake_logits.reshape(-1) - d2)), ctx.state


def zcr_g(ctx: Context):
  z2 = perturbed(ctx.key, ctx.z, ctx.options["sigma"])
  diff = ctx.fake - ctx.generate(z2)
  return -jnp.mean(jnp.square(diff)), ctx.state


REGULARIZERS.register("zcr", Regularizer(zcr, sides=("d",), weight=5.0,
                                         options={"sigma": 0.03}))
REGULARIZERS.register("zcr_g", Regularizer(zcr_g, sides=("g",), weight=0.5,
                                           options={"sigma": 0.03}))
