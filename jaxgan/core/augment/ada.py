"""ADA's augmentation pipeline: geometric and colour transformations with one probability p.

Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
Networks with Limited Data" (NeurIPS), appendix B; the 'bgc' pipeline of its code
(NVlabs/stylegan2-ada-pytorch, training/augment.py), from which the constants, the order
of the transformations and the resampling filter are taken:

  b  pixel blitting   x-flip, 90-degree rotations, integer translation (up to 1/8 of the
                      size, reflect-padded)
  g  geometric        isotropic scaling (log2 std 0.2), rotation (uniform over the circle,
                      split into a pre- and a post-rotation each with probability
                      1 - sqrt(1 - p), so that one of them happens with probability p),
                      anisotropic scaling (log2 std 0.2), fractional translation (std 1/8)
  c  colour           brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation
                      (uniform over the circle), saturation (log2 std 1); hue and saturation
                      only for RGB images, as in the reference

Each transformation is applied to each example independently with probability p (a
per-example coin), so with p = 0 the pipeline is the identity and draws make no difference.
The geometric ones are one inverse affine map per example, executed as in the reference:
reflect padding, 2x upsampling with the 'sym6' wavelet low-pass filter, bilinear sampling,
2x downsampling with the mirrored filter. All of it is linear in the image (gathers,
convolutions, per-example colour matrices), so gradients flow to the image for G's update
and for gradient penalties.

Where we differ from the reference, on purpose:
- Blitting is executed as exact index operations (x-flips and rotations are permutations,
  integer translation a reflected copy), then the geometric map is applied to the result;
  the reference folds all of them into one resampling. Same distribution of transforms,
  but flips and rotations cost nothing and lose nothing to the resampling filters.
- Examples that drew no geometric (or no colour) transformation keep their pixels exactly;
  the reference passes the whole batch through the up/down filters whenever any geometric
  transform is enabled. That makes p = 0 an exact identity, and skips nothing else.
- A non-square image is turned by 0 or 180 degrees only (`rotate90`): a quarter turn
  would not fit its frame.
- The padding is the reference's largest margin (size - 1 per side) for every batch, so
  that shapes are static; the reference computes a smaller margin per batch that covers the
  same sampled points. The values are the same; the memory grows with the image (at 256^2
  RGB about 1 GB per 32 images in float32).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.base import rng
from jaxgan.core.augment import AUGMENTATIONS, Augmentation

# Coefficients of the 'sym6' wavelet decomposition low-pass filter (PyWavelets' values).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057,
        -0.048311742585633, 0.4910559419267466, 0.787641141030194, 0.3379294217276218,
        -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
        0.0017677118642428036, -0.007800708325034148)
HZ_PAD = len(SYM6) // 4   # output margin kept while resampling, in pixels

XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
GROUPS = "bgc"


def _coin(key, n, p):
  """Per-example Bernoulli(p) (the reference's `rand < p`)."""
  return jax.random.uniform(key, (n,)) < p


def _keys(key, name):
  return jax.random.split(rng.stream(key, name))


# ---- pixel blitting: exact index operations ----------------------------------------------

def xflip(key, x, p):
  kv, kp = _keys(key, "xflip")
  flip = (jnp.floor(jax.random.uniform(kv, (x.shape[0],)) * 2) == 1) & _coin(kp, x.shape[0], p)
  return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def rotate90(key, x, p):
  """Counter-clockwise by 90 degrees times i, i uniform in {0, 1, 2, 3}. A non-square
  image takes only the turns that keep its frame, 0 or 180 degrees (uniform): a quarter
  turn of a 32x64 image does not fit in 32x64, and the reference, which resamples it into
  the frame, crops half of it and fills the rest by reflection."""
  kv, kp = _keys(key, "rotate90")
  n, h, w = x.shape[:3]
  i = jnp.floor(jax.random.uniform(kv, (n,)) * (4 if h == w else 2)).astype(jnp.int32)
  i = jnp.where(_coin(kp, n, p), i, 0)
  if h != w:
    return jnp.where((i == 1)[:, None, None, None], x[:, ::-1, ::-1], x)
  rots = jnp.stack([jnp.rot90(x, k, axes=(1, 2)) for k in range(4)])
  return rots[i, jnp.arange(n)]


def _reflect(idx, size, xp=jnp):
  """Index into [0, size) with reflection at the borders (no edge repeat, numpy 'reflect');
  `xp` = np for the static padding matrices, jnp for traced shifts."""
  period = 2 * (size - 1)
  idx = xp.abs(idx) % period
  return xp.where(idx >= size, period - idx, idx)


def int_translate(key, x, p):
  """out[y, x] = in[y - ty, x - tx], reflected at the borders; t up to 1/8 of the size."""
  kv, kp = _keys(key, "xint")
  n, h, w, _ = x.shape
  t = (jax.random.uniform(kv, (n, 2)) * 2 - 1) * XINT_MAX
  t = jnp.where(_coin(kp, n, p)[:, None], t, 0.0)
  tx, ty = jnp.round(t[:, 0] * w).astype(jnp.int32), jnp.round(t[:, 1] * h).astype(jnp.int32)
  rows = _reflect(jnp.arange(h)[None, :] - ty[:, None], h)     # (n, h)
  cols = _reflect(jnp.arange(w)[None, :] - tx[:, None], w)     # (n, w)
  x = jnp.take_along_axis(x, rows[:, :, None, None], axis=1)
  return jnp.take_along_axis(x, cols[:, None, :, None], axis=2)


# ---- general geometric transformations: one inverse affine map per example ---------------

def _rotation(theta):
  c, s = jnp.cos(theta), jnp.sin(theta)
  z, o = jnp.zeros_like(theta), jnp.ones_like(theta)
  return jnp.stack([jnp.stack([c, -s, z], -1), jnp.stack([s, c, z], -1),
                    jnp.stack([z, z, o], -1)], -2)


def _diag(sx, sy, tx=None, ty=None):
  z, o = jnp.zeros_like(sx), jnp.ones_like(sx)
  tx = z if tx is None else tx
  ty = z if ty is None else ty
  return jnp.stack([jnp.stack([sx, z, tx], -1), jnp.stack([z, sy, ty], -1),
                    jnp.stack([z, z, o], -1)], -2)


def geometric_matrix(key, n, h, w, p):
  """(n, 3, 3) inverse maps (output pixel -> input pixel, centred pixel coordinates) of
  scaling, rotation, anisotropic scaling, rotation and fractional translation, each drawn
  with its probability; identity where nothing was drawn."""
  one = jnp.ones((n,))
  ks, kp = _keys(key, "scale")
  s = jnp.where(_coin(kp, n, p), jnp.exp2(jax.random.normal(ks, (n,)) * SCALE_STD), one)
  g = _diag(1 / s, 1 / s)
  p_rot = 1 - jnp.sqrt(jnp.clip(1 - p, 0, 1))   # P(pre or post rotation) = p
  kr, kpr = _keys(key, "rotate_pre")
  theta = (jax.random.uniform(kr, (n,)) * 2 - 1) * jnp.pi * ROTATE_MAX
  g = g @ _rotation(jnp.where(_coin(kpr, n, p_rot), theta, 0.0))
  ka, kpa = _keys(key, "aniso")
  s = jnp.where(_coin(kpa, n, p), jnp.exp2(jax.random.normal(ka, (n,)) * ANISO_STD), one)
  g = g @ _diag(1 / s, s)
  kr, kpr = _keys(key, "rotate_post")
  theta = (jax.random.uniform(kr, (n,)) * 2 - 1) * jnp.pi * ROTATE_MAX
  g = g @ _rotation(jnp.where(_coin(kpr, n, p_rot), theta, 0.0))
  kt, kpt = _keys(key, "xfrac")
  t = jnp.where(_coin(kpt, n, p)[:, None], jax.random.normal(kt, (n, 2)) * XFRAC_STD, 0.0)
  return g @ _diag(one, one, -t[:, 0] * w, -t[:, 1] * h)


def _filter():
  f = np.asarray(SYM6, np.float64)
  return f / f.sum()


def upsample_matrix(n: int, pad: int) -> np.ndarray:
  """(2 (n + 2 pad), n): reflect-pad by `pad`, then the reference's upfirdn2d.upsample2d
  along one axis (zero insertion, padding (6, 5), a convolution with f, gain 2):
  U[k] = 2 sum_i P[i] f[5 + k - 2 i]."""
  f, k = _filter(), len(SYM6)
  n_p = n + 2 * pad
  rows, cols = np.arange(2 * n_p)[:, None], np.arange(n_p)[None, :]
  tap = (k // 2 - 1) + rows - 2 * cols
  up = np.where((tap >= 0) & (tap < k), 2 * f[np.clip(tap, 0, k - 1)], 0.0)
  reflect = np.zeros((n_p, n))
  reflect[np.arange(n_p), _reflect(np.arange(n_p) - pad, n, np)] = 1.0
  return up @ reflect


def downsample_matrix(n: int) -> np.ndarray:
  """(n, 2 n + 4 HZ_PAD): the reference's downsample2d with padding -2 HZ_PAD and
  flip_filter=True along one axis: crop 1, correlate with f, keep every 2nd sample:
  D[j] = sum_t f[t] O[1 + 2 j + t]."""
  f, k = _filter(), len(SYM6)
  rows, cols = np.arange(n)[:, None], np.arange(2 * n + 4 * HZ_PAD)[None, :]
  tap = cols - 1 - 2 * rows
  return np.where((tap >= 0) & (tap < k), f[np.clip(tap, 0, k - 1)], 0.0)


def _bilinear(img, ky, kx):
  """img (S, T, C) sampled at float pixel indices (zero outside), as grid_sample does."""
  y0, x0 = jnp.floor(ky), jnp.floor(kx)
  out = 0.0
  for dy in (0, 1):
    for dx in (0, 1):
      yy, xx = y0 + dy, x0 + dx
      wgt = (1 - jnp.abs(ky - yy)) * (1 - jnp.abs(kx - xx))
      inside = (yy >= 0) & (yy < img.shape[0]) & (xx >= 0) & (xx < img.shape[1])
      yi = jnp.clip(yy, 0, img.shape[0] - 1).astype(jnp.int32)
      xi = jnp.clip(xx, 0, img.shape[1] - 1).astype(jnp.int32)
      out = out + jnp.where(inside, wgt, 0.0)[..., None] * img[yi, xi]
  return out


def resample(x, g_inv):
  """Applies per-example inverse maps `g_inv` (n, 3, 3; centred pixel coordinates) to
  NHWC images: reflect-pad, upsample 2x, bilinear sample, downsample 2x. Padding and the
  two filters are linear maps along each axis, applied as small matrix products (much
  faster than 1-channel convolutions on a CPU, and the same numbers)."""
  n, h, w, c = x.shape
  to = lambda m: jnp.asarray(m, x.dtype)
  up = jnp.einsum("ai,nijc,bj->nabc", to(upsample_matrix(h, h - 1)), x,
                  to(upsample_matrix(w, w - 1)))
  so_y, so_x = 2 * (h + 2 * HZ_PAD), 2 * (w + 2 * HZ_PAD)
  si_y, si_x = up.shape[1], up.shape[2]
  # Output up-res pixel k, centred: k - (S_out - 1)/2; at the original resolution (pixel
  # centres aligned as in the reference): (. + 0.5) / 2. Map it with g_inv, then back to
  # an up-res input index: 2 q - 0.5 + (S_in - 1)/2.
  qy = (jnp.arange(so_y) - (so_y - 1) / 2 + 0.5) / 2
  qx = (jnp.arange(so_x) - (so_x - 1) / 2 + 0.5) / 2
  qy, qx = jnp.meshgrid(qy, qx, indexing="ij")

  def one(img, m):
    sx = m[0, 0] * qx + m[0, 1] * qy + m[0, 2]
    sy = m[1, 0] * qx + m[1, 1] * qy + m[1, 2]
    return _bilinear(img, 2 * sy - 0.5 + (si_y - 1) / 2, 2 * sx - 0.5 + (si_x - 1) / 2)

  sampled = jax.vmap(one)(up, g_inv.astype(x.dtype))            # (n, so_y, so_x, c)
  return jnp.einsum("ia,nabc,jb->nijc", to(downsample_matrix(h)), sampled,
                    to(downsample_matrix(w)))


def geometric(key, x, p):
  n, h, w, _ = x.shape
  g_inv = geometric_matrix(key, n, h, w, p)
  moved = jnp.any(g_inv != jnp.eye(3), axis=(1, 2))
  return jnp.where(moved[:, None, None, None], resample(x, g_inv), x)


# ---- colour: one 4x4 matrix per example ---------------------------------------------------

LUMA = np.asarray([1, 1, 1, 0], np.float64) / math.sqrt(3)


def _rotate3d(v, theta):
  """(n, 4, 4) rotations by theta about the unit axis v (Rodrigues)."""
  s, c = jnp.sin(theta)[:, None, None], jnp.cos(theta)[:, None, None]
  v3 = jnp.asarray(v[:3], jnp.float32)
  cross = jnp.asarray([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], jnp.float32)
  r3 = c * jnp.eye(3) + s * cross + (1 - c) * jnp.outer(v3, v3)
  out = jnp.zeros((theta.shape[0], 4, 4)).at[:, :3, :3].set(r3)
  return out.at[:, 3, 3].set(1.0)


def color_matrix(key, n, channels, p):
  """(n, 4, 4) colour maps (colour_out = C colour_in, homogeneous) and whether any
  transformation was drawn for each example."""
  eye = jnp.broadcast_to(jnp.eye(4), (n, 4, 4))
  vv = jnp.asarray(np.outer(LUMA, LUMA), jnp.float32)
  drawn = jnp.zeros((n,), bool)
  kv, kp = _keys(key, "brightness")
  on = _coin(kp, n, p)
  b = jnp.where(on, jax.random.normal(kv, (n,)) * BRIGHTNESS_STD, 0.0)
  C = eye.at[:, :3, 3].set(b[:, None])
  drawn |= on
  kv, kp = _keys(key, "contrast")
  on = _coin(kp, n, p)
  c = jnp.where(on, jnp.exp2(jax.random.normal(kv, (n,)) * CONTRAST_STD), 1.0)
  C = (eye * jnp.concatenate([jnp.repeat(c[:, None], 3, 1), jnp.ones((n, 1))], 1)[:, None]) @ C
  drawn |= on
  kv, kp = _keys(key, "lumaflip")
  on = _coin(kp, n, p)
  i = jnp.where(on, jnp.floor(jax.random.uniform(kv, (n,)) * 2), 0.0)
  C = (eye - 2 * vv * i[:, None, None]) @ C
  drawn |= on & (i > 0)
  if channels > 1:
    kv, kp = _keys(key, "hue")
    on = _coin(kp, n, p)
    theta = jnp.where(on, (jax.random.uniform(kv, (n,)) * 2 - 1) * jnp.pi * HUE_MAX, 0.0)
    C = _rotate3d(LUMA, theta) @ C
    drawn |= on
    kv, kp = _keys(key, "saturation")
    on = _coin(kp, n, p)
    s = jnp.where(on, jnp.exp2(jax.random.normal(kv, (n,)) * SATURATION_STD), 1.0)
    C = (vv + (eye - vv) * s[:, None, None]) @ C
    drawn |= on
  return C, drawn


def color(key, x, p):
  n, _, _, ch = x.shape
  if ch not in (1, 3):
    raise ValueError(f"ADA's colour transformations need RGB or greyscale images, got {ch} "
                     "channels; set config.augment.ada_ops without 'c'.")
  C, drawn = color_matrix(key, n, ch, p)
  C = C.astype(x.dtype)
  if ch == 3:
    y = jnp.einsum("nij,nhwj->nhwi", C[:, :3, :3], x) + C[:, None, None, :3, 3]
  else:  # greyscale: the mean of the three output rows, applied to the one channel
    row = jnp.mean(C[:, :3, :], axis=1)                    # (n, 4)
    y = x * jnp.sum(row[:, :3], -1)[:, None, None, None] + row[:, None, None, 3:]
  return jnp.where(drawn[:, None, None, None], y, x)


# ---- the pipeline -------------------------------------------------------------------------

def ada(key, x, p, ada_ops: str = GROUPS):
  """The pipeline with probability p (a scalar array): blitting, geometric, colour, each
  group only if its letter is in `ada_ops`. With p <= 0 nothing is computed."""
  ops = ada_ops

  def run(x):
    if "b" in ops:
      x = xflip(key, x, p)
      x = rotate90(key, x, p)
      x = int_translate(key, x, p)
    if "g" in ops:
      x = geometric(key, x, p)
    if "c" in ops:
      x = color(key, x, p)
    return x

  return jax.lax.cond(p > 0, run, lambda x: x, x)


AUGMENTATIONS.register("ada", Augmentation(ada, uses_p=True, settings=("ada_ops",)))
