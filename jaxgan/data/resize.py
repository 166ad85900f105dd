"""TF-free image preprocessing: bilinear resize and channel conversion in numpy.

The training path (embedded data, image folders, prepared and streamed data) must not
import TensorFlow: it takes seconds to import, grabs memory, and a streaming worker
process would pay that again. These functions reproduce what jaxgan did with tf.image
before, so datasets decoded by older versions and by this one are the same pixels:

- `resize_bilinear` is `tf.image.resize(method="bilinear", antialias=False)` (TF2's
  half-pixel centres: source coordinate (i + 0.5) * in / out - 0.5, clamped at the
  borders), computed in float32 in TF's order, followed by round-half-to-even and a clip;
- `rgb_to_gray` is `tf.image.rgb_to_grayscale` on uint8: weights 0.2989, 0.5870, 0.1140 on
  the [0, 1] image, back to uint8 by `convert_image_dtype` (x * 255.5, truncated).

tests/test_stream.py checks both against TensorFlow.
"""
from __future__ import annotations

import numpy as np

from jaxgan.base import sizes
from jaxgan.base.errors import UserError

GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)


def _axis_weights(in_size: int, out_size: int):
  """(lower, upper, lerp) along one axis, as TF's compute_interpolation_weights."""
  scale = np.float32(in_size / out_size)
  x = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
  floor = np.floor(x)
  lower = np.maximum(floor, 0).astype(np.int64)
  upper = np.minimum(np.ceil(x), in_size - 1).astype(np.int64)
  return lower, upper, (x - floor).astype(np.float32)


def resize_bilinear(images: np.ndarray, size) -> np.ndarray:
  """uint8 [B, H, W, C] -> uint8 [B, h, w, C] for size = h (square) or (h, w), equal to
  tf.image.resize's bilinear (each axis is resized on its own: the aspect ratio is not
  kept, as TF and torchvision's Resize((h, w)) do)."""
  x = images.astype(np.float32)
  h, w = sizes.hw(size)
  ylo, yhi, ylerp = _axis_weights(x.shape[1], h)
  xlo, xhi, xlerp = _axis_weights(x.shape[2], w)
  xlerp = xlerp[None, None, :, None]
  top_rows, bottom_rows = x[:, ylo], x[:, yhi]
  top = top_rows[:, :, xlo] + (top_rows[:, :, xhi] - top_rows[:, :, xlo]) * xlerp
  bottom = bottom_rows[:, :, xlo] + (bottom_rows[:, :, xhi] - bottom_rows[:, :, xlo]) * xlerp
  out = top + (bottom - top) * ylerp[None, :, None, None]
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] -> uint8 [..., 1] as tf.image.rgb_to_grayscale."""
  x = images.astype(np.float32) / np.float32(255)
  gray = (x[..., 0:1] * GRAY_WEIGHTS[0] + x[..., 1:2] * GRAY_WEIGHTS[1]
          + x[..., 2:3] * GRAY_WEIGHTS[2])
  return np.clip(gray * np.float32(255.5), 0, 255).astype(np.uint8)


def preprocess(images, image_size, channels: int) -> np.ndarray:
  """uint8 [B,H,W,C] -> uint8 [B,h,w,channels] for image_size = h (square) or (h, w):
  channel conversion, then bilinear resize."""
  x = np.asarray(images)
  c = x.shape[-1]
  if c not in (1, 3, 4):
    raise UserError(f"Images have {c} channels; expected 1 (grayscale), 3 (RGB) or 4 (RGBA).")
  if c == 4:
    x, c = x[..., :3], 3
  if channels == 1 and c == 3:
    x = rgb_to_gray(x)
  elif channels == 3 and c == 1:
    x = np.repeat(x, 3, axis=-1)
  elif channels not in (1, 3):
    raise UserError(f"config.data.channels must be 1 or 3, got {channels}.")
  if tuple(x.shape[1:3]) != sizes.hw(image_size):
    x = resize_bilinear(x, image_size)
  return np.ascontiguousarray(x, dtype=np.uint8)
