"""Images -> FID Inception features and logits, with the resize of a named protocol.

The resize to 299x299 is the largest source of FID disagreement between codebases (Parmar
et al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation"), so it is a
setting, stored with every result (`config.eval.inception_resize`):

- `bilinear`: pytorch-fid's `F.interpolate(x, (299, 299), mode="bilinear",
  align_corners=False)` on [0, 1] images: half-pixel centres, two taps, no antialiasing;
- `bicubic`: clean-fid's PIL bicubic resize of each float channel (antialiased when it
  shrinks), clipped to [0, 255].

Both are linear maps per axis, so each is one matrix per axis, built here in float64 (the
bilinear one from PyTorch's formula, the bicubic one by letting PIL resize the identity)
and applied as two matrix products on the device. Grayscale images are repeated to three
channels first, as pytorch-fid's `convert("RGB")` does.
"""
from __future__ import annotations

import functools
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgan.eval import inception

RESIZE_FILTERS = ("bilinear", "bicubic")


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in]: PyTorch's bilinear interpolation, align_corners=False, no antialias."""
  m = np.zeros((n_out, n_in))
  scale = n_in / n_out
  for i in range(n_out):
    src = max((i + 0.5) * scale - 0.5, 0.0)
    i0 = int(np.floor(src))
    i1 = min(i0 + 1, n_in - 1)
    frac = src - i0
    m[i, i0] += 1.0 - frac
    m[i, i1] += frac
  return m


def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in]: PIL's Image.resize(BICUBIC) of a float ('F') image along one axis,
  read off by resizing the identity (PIL resamples each axis separately and linearly)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  eye = Image.fromarray(np.eye(n_in, dtype=np.float32), mode="F")
  return np.asarray(eye.resize((n_in, n_out), Image.BICUBIC), np.float64)


@functools.lru_cache(maxsize=16)
def resize_matrices(h: int, w: int, kind: str, size: int) -> Tuple[np.ndarray, np.ndarray]:
  if kind not in RESIZE_FILTERS:
    raise ValueError(f"resize filter {kind!r}; valid: {', '.join(RESIZE_FILTERS)}")
  make = bilinear_matrix if kind == "bilinear" else bicubic_matrix
  return make(h, size), make(w, size)


def prepare(images_u8, mh, mw, clip: bool):
  """uint8 [N, H, W, C] -> float32 [N, 299, 299, 3] in [-1, 1] (pytorch-fid's input;
  the size is the matrices')."""
  x = images_u8.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  hi = jax.lax.Precision.HIGHEST
  x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hi)
  x = jnp.einsum("pw,nowc->nopc", mw, x, precision=hi)
  if clip:
    x = jnp.clip(x, 0.0, 255.0)
  return x / 255.0 * 2.0 - 1.0


@functools.partial(jax.jit, static_argnames=("graphdef", "clip"))
def _forward(graphdef, state, images, mh, mw, clip: bool):
  """One compiled program per network structure, filter and batch shape, shared by every
  extractor of the process (a second evaluation does not compile again)."""
  model = nnx.merge(graphdef, state)
  return model.features_and_logits(prepare(images, mh, mw, clip))


def _padded_size(n: int, batch: int, n_dev: int) -> int:
  """A full batch, or for fewer images the next power of two (few distinct shapes, so few
  compilations, without running a whole batch of padding), a multiple of the devices."""
  if n >= batch:
    return batch
  size = 1 << max(0, (n - 1).bit_length())
  return -(-size // n_dev) * n_dev


class InceptionExtractor:
  """Features (2048-d pool3) and logits (1008) of uint8 images, in batches of
  `batch_size` spread over the local devices."""

  def __init__(self, graphdef, state, info: Dict[str, object], resize: str = "bilinear",
               batch_size: int = 100):
    if resize not in RESIZE_FILTERS:
      raise ValueError(f"resize filter {resize!r}; valid: {', '.join(RESIZE_FILTERS)}")
    self.graphdef, self.state, self.resize = graphdef, state, resize
    self.size = inception.SIZE   # 299; tests shrink it to keep CPU time down
    n_dev = jax.local_device_count()
    self.batch_size = max(n_dev, batch_size // n_dev * n_dev)
    self.info = dict(info, resize=resize, input_size=self.size)
    self.name = f"inception-{str(info.get('weights_sha256', 'x'))[:12]}-{resize}-{self.size}"
    self.num_classes = 0
    self.predict = None
    self.features_float = None
    mesh = jax.make_mesh((n_dev,), ("data",), devices=jax.local_devices())
    self._batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    self._state = jax.device_put(state, jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec()))

  def features_and_logits(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """float64 [N, 2048] features and [N, 1008] logits of uint8 [N, H, W, C] images."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"expected uint8 images [N, H, W, 1 or 3], got {images.dtype} "
                       f"{images.shape}")
    mh, mw = (jnp.asarray(m, jnp.float32)
              for m in resize_matrices(*images.shape[1:3], self.resize, self.size))
    feats, logits = [], []
    n_dev = jax.local_device_count()
    for s in range(0, len(images), self.batch_size):
      chunk = images[s:s + self.batch_size]
      pad = _padded_size(len(chunk) if s == 0 else self.batch_size, self.batch_size,
                         n_dev) - len(chunk)
      full = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
      f, l = _forward(self.graphdef, self._state, jax.device_put(full, self._batch), mh, mw,
                      self.resize == "bicubic")
      feats.append(np.asarray(f, np.float64)[:len(chunk)])
      logits.append(np.asarray(l, np.float64)[:len(chunk)])
    return np.concatenate(feats), np.concatenate(logits)

  def features(self, images: np.ndarray) -> np.ndarray:
    return self.features_and_logits(images)[0]
