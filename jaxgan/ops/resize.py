"""PyTorch's bicubic resizes as matrices: `F.interpolate(x, size, mode="bicubic",
align_corners=False)`, with and without `antialias`.

Why here: a frozen encoder ported from PyTorch (DINOv2 for GAT's REPA term,
jaxgan/pretrained/dinov2.py) sees its inputs through PyTorch's resizes, and its position
table is resampled by timm's `resample_abs_pos_embed` (bicubic, antialiased). jax.image's
bicubic is Keys' kernel with a = -0.5 and no border clamp, which is neither of them.

The formulas are those of ATen (aten/src/ATen/native/UpSample.h and
cpu/UpSampleKernel.cpp, PyTorch 2.x), read for the facts:

- plain: source x = (i + 0.5) * in / out - 0.5; the four taps floor(x) - 1 .. floor(x) + 2
  clamped to the image; Keys' cubic convolution with a = -0.75;
- antialias (PIL's resampling): scale = in / out, support = 2 * max(scale, 1), centre
  (i + 0.5) * scale; the taps [trunc(centre - support + 0.5), trunc(centre + support + 0.5))
  within the image, weighted by Keys' kernel with a = -0.5 at (j - centre + 0.5) / max(scale,
  1) and normalised to sum 1.

A resize is separable: out = Wh @ x @ Ww^T per channel, so both are one einsum on an
NHWC batch. Weights are numpy float64, computed once per size pair.
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np


def _keys(x: np.ndarray, a: float) -> np.ndarray:
  """Keys' cubic convolution kernel at |x| (0 beyond 2)."""
  x = np.abs(x)
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=64)
def bicubic_matrix(n_in: int, n_out: int, antialias: bool = False) -> np.ndarray:
  """(n_out, n_in) weights of PyTorch's bicubic resize along one axis."""
  w = np.zeros((n_out, n_in), np.float64)
  scale = n_in / n_out
  if not antialias:
    for i in range(n_out):
      x = (i + 0.5) * scale - 0.5
      x0 = math.floor(x)
      t = x - x0
      for k, d in zip(range(x0 - 1, x0 + 3), (t + 1, t, 1 - t, 2 - t)):
        w[i, min(max(k, 0), n_in - 1)] += _keys(np.float64(d), -0.75)
    return w
  support = 2.0 * max(scale, 1.0)
  inv = 1.0 / max(scale, 1.0)
  for i in range(n_out):
    centre = (i + 0.5) * scale
    lo = max(int(centre - support + 0.5), 0)
    hi = min(int(centre + support + 0.5), n_in)
    taps = _keys((np.arange(lo, hi) - centre + 0.5) * inv, -0.5)
    w[i, lo:hi] = taps / taps.sum()
  return w


def bicubic(x, height: int, width: int, antialias: bool = False):
  """An NHWC batch resized to (height, width) as PyTorch's bicubic interpolate does."""
  if x.shape[1:3] == (height, width):
    return x
  wh = jnp.asarray(bicubic_matrix(x.shape[1], height, antialias), x.dtype)
  ww = jnp.asarray(bicubic_matrix(x.shape[2], width, antialias), x.dtype)
  return jnp.einsum("ih,nhwc,jw->nijc", wh, x, ww)
