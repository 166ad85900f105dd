"""DiffAugment: color, translation and cutout on every image D sees.

Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training" (NeurIPS). The paper's policy string `"color,translation,cutout"` is a valid
`config.augment.policy` as it stands: each of the three is registered here under its own
name, and `diffaugment` is the three in that order. The constants are the reference
implementation's (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py), on images in
[-1, 1]:

- color: brightness + U[-0.5, 0.5), then saturation (distance from the per-pixel channel
  mean) x U[0, 2), then contrast (distance from the per-image mean) x U[0.5, 1.5); each
  factor drawn per example.
- translation: an integer shift of up to 1/8 of the size (rounded) along each axis, drawn
  per example from {-s, ..., s}; the uncovered border is 0 (mid-grey).
- cutout: a square of half the size (rounded) set to 0, its centre uniform over the image
  (the square may stick out of it, as in the reference).

As in the reference, nothing is clipped back to [-1, 1]: brightness and contrast can leave
it, and clipping would zero the gradient exactly where the colour shift matters. All three
are differentiable w.r.t. the image (translation and cutout are gathers and masks, so their
gradient is the same permutation or mask).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.base import rng
from jaxgan.core.augment import AUGMENTATIONS, Augmentation

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _per_example(key, x, low, high):
  return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def color(key: jax.Array, x: jax.Array) -> jax.Array:
  kb, ks, kc = jax.random.split(key, 3)
  x = x + _per_example(kb, x, -0.5, 0.5)
  mean = jnp.mean(x, axis=3, keepdims=True)
  x = (x - mean) * _per_example(ks, x, 0.0, 2.0) + mean
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _per_example(kc, x, 0.5, 1.5) + mean


def _shift_one(image, dy, dx, pad_h, pad_w):
  """out[i, j] = image[i + dy, j + dx], 0 where that falls outside the image."""
  h, w, c = image.shape
  padded = jnp.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)))
  return jax.lax.dynamic_slice(padded, (pad_h + dy, pad_w + dx, 0), (h, w, c))


def _offsets(key, n: int, h: int, w: int):
  """Per-example shifts (dy, dx) of translation for h x w images, and their bounds."""
  sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
  ky, kx = jax.random.split(key)
  return (jax.random.randint(ky, (n,), -sh, sh + 1), jax.random.randint(kx, (n,), -sw, sw + 1),
          sh, sw)


def translation(key: jax.Array, x: jax.Array) -> jax.Array:
  n, h, w, _ = x.shape
  dy, dx, sh, sw = _offsets(key, n, h, w)
  return jax.vmap(_shift_one, in_axes=(0, 0, 0, None, None))(x, dy, dx, sh, sw)


def replay_translation(key: jax.Array, x: jax.Array, like: tuple) -> jax.Array:
  """The shifts `translation(key, .)` makes on images of shape `like`, made on `x` of
  another size as the same fractions of its sides (rounded to whole pixels): what an
  encoder's view of the same image needs (GAT's REPA targets)."""
  n, h, w = like[:3]
  dy, dx, sh, sw = _offsets(key, n, h, w)
  big_h, big_w = x.shape[1], x.shape[2]
  dy = jnp.round(dy * (big_h / h)).astype(jnp.int32)
  dx = jnp.round(dx * (big_w / w)).astype(jnp.int32)
  ph, pw = -(-sh * big_h // h), -(-sw * big_w // w)
  return jax.vmap(_shift_one, in_axes=(0, 0, 0, None, None))(x, dy, dx, ph, pw)


def cutout_mask(key: jax.Array, n: int, h: int, w: int) -> jax.Array:
  """(n, h, w, 1) mask, 0 inside each example's square and 1 elsewhere."""
  ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
  ky, kx = jax.random.split(key)
  # The reference draws the centre from [0, size + (1 - cut % 2)): one more position when the
  # cut is even, so the square's first row ranges over [-cut/2, size - cut/2].
  top = jax.random.randint(ky, (n, 1, 1, 1), 0, h + (1 - ch % 2)) - ch // 2
  left = jax.random.randint(kx, (n, 1, 1, 1), 0, w + (1 - cw % 2)) - cw // 2
  rows = jnp.arange(h)[None, :, None, None]
  cols = jnp.arange(w)[None, None, :, None]
  inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
  return jnp.where(inside, 0.0, 1.0)


def cutout(key: jax.Array, x: jax.Array) -> jax.Array:
  n, h, w, _ = x.shape
  return x * cutout_mask(key, n, h, w).astype(x.dtype)


def diffaugment(key: jax.Array, x: jax.Array) -> jax.Array:
  """The paper's full policy: color, then translation, then cutout (given the same key, the
  same draws as the pipeline of the policy "color,translation,cutout")."""
  for name, fn in (("color", color), ("translation", translation), ("cutout", cutout)):
    x = fn(rng.stream(key, name), x)
  return x


AUGMENTATIONS.register("color", Augmentation(color))
AUGMENTATIONS.register("translation", Augmentation(translation, replay=replay_translation))
AUGMENTATIONS.register("cutout", Augmentation(cutout))
AUGMENTATIONS.register("diffaugment", Augmentation(diffaugment, replay=lambda k, x, like:
    replay_translation(rng.stream(k, "translation"), x, like)))
