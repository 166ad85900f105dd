"""GAT's variants of DiffAugment's colour and of flips: `gat_color` changes brightness,
saturation and contrast of a random half of the batch, and `gat_flip` mirrors each image
with probability 0.4.

Hyun et al. 2025, "Scalable GANs with Transformers", code hse1032/GAT@21a2dd09,
losses/diffaug.py: rand_brightness_saturation_contrast keeps the samples with u >= 0.5
unchanged and, unlike DiffAugment's color (jaxgan/core/augment/diffaugment.py), takes the
saturation mean (over channels, per pixel) and the contrast mean (over the image) from the
input BEFORE the brightness shift, so brightness is scaled by the later factors too; and
rand_flip flips where u < 0.4. GAT's policy is "gat_color,translation,cutout,gat_flip"
(its 'color,translation,cutout,flip'), on SD-VAE latents.

One difference, on D's multi-level inputs (G's levels on channels, jaxgan/core/models/
gat.py): the means here are over all the levels' channels; the reference takes them from
the last level and replays them on the others (equal for real inputs, whose levels are one
image; for generated ones the means differ by how much the levels do).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.augment import AUGMENTATIONS, Augmentation

COLOR_FRACTION = 0.5   # share of the batch GAT's colour augmentation changes
FLIP_P = 0.4           # GAT's flip probability


def gat_color(key: jax.Array, x: jax.Array) -> jax.Array:
  """x + (b - 1/2), then (x - m_s) 2s + m_s, then (x - m_c)(c + 1/2) + m_c, with b, s, c ~
  U[0, 1) per example and m_s, m_c the means of the input, on a random half of the batch."""
  k_mask, kb, ks, kc = jax.random.split(key, 4)
  u = lambda k: jax.random.uniform(k, (x.shape[0], 1, 1, 1), x.dtype)
  m_s = jnp.mean(x, axis=3, keepdims=True)
  m_c = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  y = x + (u(kb) - 0.5)
  y = (y - m_s) * (2 * u(ks)) + m_s
  y = (y - m_c) * (u(kc) + 0.5) + m_c
  return jnp.where(u(k_mask) < COLOR_FRACTION, y, x)


def gat_flip(key: jax.Array, x: jax.Array) -> jax.Array:
  flip = jax.random.uniform(key, (x.shape[0], 1, 1, 1)) < FLIP_P
  return jnp.where(flip, x[:, :, ::-1, :], x)


AUGMENTATIONS.register("gat_color", Augmentation(gat_color))
AUGMENTATIONS.register("gat_flip", Augmentation(
    gat_flip, replay=lambda key, x, like: gat_flip(key, x)))   # the same draws at any size
