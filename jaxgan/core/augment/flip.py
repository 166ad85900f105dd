"""Random horizontal flips of D's inputs: each image mirrored with probability 1/2.

The 'xflip' of ADA's pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", appendix B: p = 1/2 makes it invisible to G, unlike the other
transformations, which need p < 1). Only for data whose mirror image is equally real
(faces, most natural images; not digits or text).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.augment import AUGMENTATIONS, Augmentation


def xflip(key: jax.Array, images: jax.Array) -> jax.Array:
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1, :], images)


AUGMENTATIONS.register("xflip", Augmentation(
    xflip, replay=lambda key, x, like: xflip(key, x)))   # the same draws at any size
