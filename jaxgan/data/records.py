"""The prepared-dataset format: ArrayRecord files of PNG-encoded examples plus a manifest.

A directory written by `python -m jaxgan.data.prepare` (after StyleGAN2-ADA's
dataset_tool.py, which turns folders and zips into one indexed archive of same-sized PNGs
with a dataset.json of labels) holds:

- `data-00000-of-00004.array_record`, ... (shard index and shard count, five digits
  each): one record per example, in the sorted order of the source paths. A record is a
  4-byte little-endian int32 label (-1 when unlabelled) followed by the PNG bytes of an
  image already resized to image_size (one side, or [height, width]: jaxgan/base/sizes.py)
  with `channels` channels. Written with group_size 1, so any record is read without
  decompressing its neighbours (random access is what makes batch b a pure function of
  (seed, b) without holding the data in memory).
- `manifest.json`: {"format": "jaxgan-prepared", "version", "count", "image_size",
  "channels", "num_classes", "class_names", "records", "record_counts", "sha256" (over the
  record files, in order), "source"}.

A latent dataset (`prepare --encoder DIR`, jaxgan/data/encode_latents.py) has the same
files with `"kind": "latent"` in its manifest: a record is the int32 label followed by the
float32 mean and then the float32 std of q(z|x) for the image, each [h, w, c]
(`latent_shape`), little-endian; the manifest adds the encoder's identity and the
per-channel statistics of the latents.

PNG is lossless, so the in-memory loader (`sources.load_prepared`) and the streaming reader
(jaxgan/data/stream.py) decode exactly the same pixels.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from typing import List, Sequence

import numpy as np

from jaxgan.base import sizes
from jaxgan.base.errors import UserError, UserFileError

FORMAT, VERSION = "jaxgan-prepared", 1
MANIFEST = "manifest.json"
WRITER_OPTIONS = "group_size:1"
_LABEL = struct.Struct("<i")


def encode(image: np.ndarray, label: int) -> bytes:
  """One example: int32 label, then the image (uint8 [S, S, C]) as PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
  return _LABEL.pack(int(label)) + buf.getvalue()


def decode(record: bytes, channels: int):
  """(uint8 [S, S, C], int label) of one record."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  label = _LABEL.unpack_from(record)[0]
  with Image.open(io.BytesIO(record[_LABEL.size:])) as im:
    arr = np.asarray(im, np.uint8)
  return arr.reshape(arr.shape[0], arr.shape[1], channels), label


def decode_many(records: Sequence[bytes], channels: int):
  """(uint8 [N, S, S, C], int32 [N]) of a list of records."""
  pairs = [decode(r, channels) for r in records]
  return (np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], np.int32))


def encode_latent(mean: np.ndarray, std: np.ndarray, label: int) -> bytes:
  """One latent example: int32 label, float32 mean, float32 std (C order, little-endian)."""
  return (_LABEL.pack(int(label)) + np.ascontiguousarray(mean, "<f4").tobytes()
          + np.ascontiguousarray(std, "<f4").tobytes())


def decode_latents(records: Sequence[bytes], shape: Sequence[int]):
  """(mean float32 [N, *shape], std float32 [N, *shape], int32 [N]) of latent records."""
  n, size = len(records), int(np.prod(shape))
  labels = np.array([_LABEL.unpack_from(r)[0] for r in records], np.int32)
  body = np.frombuffer(b"".join(r[_LABEL.size:] for r in records), "<f4")
  body = body.reshape(n, 2, size).astype(np.float32)
  return (body[:, 0].reshape(n, *shape), body[:, 1].reshape(n, *shape), labels)


def is_latent(manifest: dict) -> bool:
  return manifest.get("kind") == "latent"


LATENT_KEYS = ("latent_shape", "channel_mean", "channel_std", "encoder", "image_source")


def latent_description(manifest: dict) -> dict:
  """What a run needs to know of a latent dataset: its latents' shape and per-channel
  statistics, the encoder (directory, weights sha256, scaling and shift factors) and the
  images it was made from (for evaluation against real images)."""
  return {k: manifest[k] for k in LATENT_KEYS}


def is_prepared(folder: str) -> bool:
  return bool(folder) and os.path.isfile(os.path.join(os.path.expanduser(folder), MANIFEST))


def read_manifest(folder: str) -> dict:
  """The manifest of a prepared directory, checked for the fields jaxgan reads."""
  folder = os.path.expanduser(folder)
  path = os.path.join(folder, MANIFEST)
  try:
    with open(path) as f:
      m = json.load(f)
  except (OSError, ValueError) as e:
    raise UserFileError(f"Cannot read {path!r} (config.data.folder): {e}. Prepare the data "
                        "again with `python -m jaxgan.data.prepare SRC OUT`.") from None
  if m.get("format") != FORMAT or m.get("version") != VERSION:
    raise UserError(f"{path!r} (config.data.folder) is not a jaxgan-prepared manifest of "
                    f"version {VERSION} (format={m.get('format')!r}, version="
                    f"{m.get('version')!r}); prepare the data again with this version.")
  missing = [r for r in m["records"] if not os.path.isfile(os.path.join(folder, r))]
  if missing:
    raise UserFileError(f"{folder!r} (config.data.folder): record file {missing[0]!r} of its "
                        "manifest is missing; copy the whole prepared directory.")
  return m


def record_paths(folder: str, manifest: dict) -> List[str]:
  return [os.path.join(os.path.expanduser(folder), r) for r in manifest["records"]]


def sha256_of(paths: Sequence[str]) -> str:
  """sha256 over the bytes of the record files, in order."""
  h = hashlib.sha256()
  for p in paths:
    with open(p, "rb") as f:
      for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
  return h.hexdigest()


def check_shape(manifest: dict, folder: str, image_size, channels: int) -> None:
  """A prepared directory is used at the size and channels it was prepared with."""
  for field, want, have, flag in (
      ("image_size", sizes.text(image_size), sizes.text(manifest["image_size"]), "--size"),
      ("channels", channels, manifest["channels"], "--channels")):
    if want != have:
      raise UserError(f"config.data.{field}={want}, but the prepared data in {folder!r} has "
                      f"{field} {have}; set --config.data.{field}={have}, or prepare the "
                      f"data again with {flag} {want}.")


def decoded_bytes(manifest: dict, count: int = -1) -> int:
  """Host memory the decoded examples take: count x H x W x C uint8 images, or count x 2
  float32 latents (mean and std)."""
  n = manifest["count"] if count < 0 else count
  if is_latent(manifest):
    return int(n) * 2 * 4 * int(np.prod(manifest["latent_shape"]))
  h, w = sizes.hw(manifest["image_size"])
  return int(n) * h * w * manifest["channels"]


def open_source(folder: str, manifest: dict):
  """Random access over the records of all files: grain's ArrayRecordDataSource."""
  import grain  # pylint: disable=g-import-not-at-top
  return grain.sources.ArrayRecordDataSource(record_paths(folder, manifest))


def dataset_name(folder: str) -> str:
  return f"prepared:{os.path.basename(os.path.normpath(os.path.expanduser(folder)))}"
