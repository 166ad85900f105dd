"""Balanced consistency regularization of D, bCR (Zhao, Zhang, Chen, Singh & Zhang 2021,
"Improved Consistency Regularization for GANs", AAAI).

D should not care about a semantics-preserving transformation T of its input, on real and
on generated images alike ("balanced": the original CR of Zhang et al. 2020 used real images
only, which the paper shows leaks T's artefacts into G):

  R_bCR = lambda_real E_x ||D(x) - D(T(x))||^2 + lambda_fake E_z ||D(G(z)) - D(T(G(z)))||^2

T is the paper's: a random horizontal flip and a random integer translation of up to 1/8 of
the image (DiffAugment's `translation`, zero-filled), drawn per example from the term's own
random stream. D(x) is the logit the adversarial loss already computed on the same batch,
so the term costs two extra D evaluations; the gradient flows through both sides of the
difference, as in the paper's formulation.
Defaults follow the paper's CIFAR-10 setting, lambda_real = lambda_fake = 10: `weight` 10
scales both, the options `real` and `fake` (1.0 each) set their ratio.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.augment.diffaugment import translation
from jaxgan.core.augment.flip import xflip
from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer


def transform(key, images):
  """bCR's T: x-flip, then translation by up to 1/8 of the size."""
  k_flip, k_shift = jax.random.split(key)
  return translation(k_shift, xflip(k_flip, images))


def bcr(ctx: Context):
  k_real, k_fake = jax.random.split(ctx.key)
  d_real_t = ctx.critic(transform(k_real, ctx.real)).reshape(-1)
  d_fake_t = ctx.critic(transform(k_fake, ctx.fake)).reshape(-1)
  term = (ctx.options["real"] * jnp.mean(jnp.square(ctx.real_logits.reshape(-1) - d_real_t))
          + ctx.options["fake"] * jnp.mean(jnp.square(ctx.fake_logits.reshape(-1) - d_fake_t)))
  return term, ctx.state


REGULARIZERS.register("bcr", Regularizer(bcr, sides=("d",), weight=10.0,
                                         options={"real": 1.0, "fake": 1.0}))
