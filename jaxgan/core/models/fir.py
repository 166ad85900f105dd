"""The [1, 3, 3, 1] FIR resampling of StyleGAN2 and R3GAN (upfirdn2d of Karras et al.
2020, "Analyzing and Improving the Image Quality of StyleGAN", as in NVlabs/
stylegan2-ada-pytorch torch_utils/ops/upfirdn2d.py), written as small matrices applied
along H and W: separable, exact with zero padding, and differentiable to any order by XLA
(R1, R2 and the path-length penalty differentiate through it twice).

  x2 up:    zero insertion, pad (2, 1), the filter with gain 2 per axis (4 in all)
  /2 down:  pad (1, 1), the filter, every second sample
  valid:    the filter over a padded signal, no resampling (after a strided transposed
            convolution, or before a strided one: StyleGAN2's conv2d_resample)
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

FIR = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0   # [1, 2, 1] * [1, 1], normalised per axis


def up_matrix(n: int) -> np.ndarray:
  """(2n, n): x2 upsampling with the FIR filter (gain 2 per axis), zero padding."""
  m = np.zeros((2 * n, n), np.float32)
  for i in range(n):
    m[2 * i, i], m[2 * i + 1, i] = 0.75, 0.75
    if i > 0:
      m[2 * i, i - 1] = 0.25
    if i + 1 < n:
      m[2 * i + 1, i + 1] = 0.25
  return m


def down_matrix(n: int) -> np.ndarray:
  """(n / 2, n): /2 downsampling, y_i = sum_k FIR[k] x[2i - 1 + k], zero padding."""
  m = np.zeros((n // 2, n), np.float32)
  for i in range(n // 2):
    for k, f in enumerate(FIR):
      j = 2 * i - 1 + k
      if 0 <= j < n:
        m[i, j] = f
  return m


def valid_matrix(n: int, pad: int, gain: float) -> np.ndarray:
  """(n + 2 pad - 3, n): the FIR filter (x gain) over x zero-padded by `pad` on each side,
  valid positions only."""
  m = np.zeros((n + 2 * pad - 3, n), np.float32)
  for i in range(m.shape[0]):
    for k, f in enumerate(FIR):
      j = i + k - pad
      if 0 <= j < n:
        m[i, j] = gain * f
  return m


def apply(x, mh: np.ndarray, mw: np.ndarray):
  """y[b, i, j, c] = sum_hw mh[i, h] mw[j, w] x[b, h, w, c] (NHWC)."""
  return jnp.einsum("ih,jw,bhwc->bijc", jnp.asarray(mh, x.dtype), jnp.asarray(mw, x.dtype), x)


def resample(x, make):
  """Applies the separable resampling matrix `make(n)` along H and W (NHWC)."""
  return apply(x, make(x.shape[1]), make(x.shape[2]))


def up2(x):
  return resample(x, up_matrix)


def down2(x):
  return resample(x, down_matrix)
