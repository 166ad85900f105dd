"""A dataset encoded once by a frozen autoencoder: the latent datasets of latent GANs.

  python -m jaxgan.data.prepare SRC OUT --encoder DIR [--size S] [--channels C]
                                [--data_dir D] [--batch 256] [--shards N] [--overwrite]

SRC is a folder or .zip of images (as plain `prepare`), a prepared image directory, or
`tfds:NAME[:SPLIT]` (a TFDS dataset from --data_dir; split `train` by default). DIR is a
diffusers AutoencoderKL directory (a downloaded VAE, or WORKDIR/autoencoder of
`configs/autoencoder.py`). Each image, resized as `prepare` resizes it, is encoded on the
default JAX backend in fixed-size batches (the last one padded, so one program serves
all); its record holds the mean and the std of q(z|x) -- not a sample, so every run draws
its own z = mean + std * eps from its seeded stream each step, as R3GAN2's latent
datasets keep both (jaxgan/data/records.py has the byte layout).

The manifest adds to the prepared format: `kind: latent`, `latent_shape` [h, w, c], the
encoder (its directory, the sha256 of its weights, its config and factors), the source of
the images (a run's evaluation compares decoded samples with those images), and the
per-channel statistics of the latents a run draws: `channel_mean` (of the means) and
`channel_std` (sqrt of the variance of the means plus the mean variance of q), which
`data.latent_norm=channel` standardises with. Written to a temporary directory beside OUT
and renamed into place, as `prepare`.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import Tuple

import numpy as np

from jaxgan.base import sizes
from jaxgan.base.errors import UserError
from jaxgan.data import image_files as prepare_lib
from jaxgan.data import records, sources


def load_source(src: str, size, channels: int, data_dir: str = "", labels: str = ""
                ) -> Tuple[sources.ImageData, dict]:
  """The images of SRC at size (one side or (h, w); 0: a prepared SRC's own) x channels,
  and how to find them again."""
  if src.startswith("tfds:"):
    name, _, split = src[len("tfds:"):].partition(":")
    split = split or "train"
    data = sources.load_tfds(name, split, data_dir, size, channels)
    return data, {"kind": "tfds", "name": name, "split": split,
                  "data_dir": os.path.abspath(data_dir) if data_dir else ""}
  path = os.path.abspath(os.path.expanduser(src))
  if records.is_prepared(path):
    m = records.read_manifest(path)
    if records.is_latent(m):
      raise UserError(f"SRC={src!r} is already a latent dataset; give the images it was "
                      f"made from ({m['image_source']}).")
    for flag, want, have in (("--size", size and sizes.text(size), sizes.text(m["image_size"])),
                             ("encoder's channels", channels, m["channels"])):
      if want and want != have:
        raise UserError(f"SRC={src!r} is prepared at {sizes.times(m['image_size'])}x"
                        f"{m['channels']}, but {flag} asks for {want}; prepare the images "
                        "again at that size and channels, or drop --size.")
    return (sources.load_prepared(path, m["image_size"], m["channels"]),
            {"kind": "prepared", "folder": path})
  if os.path.isfile(path) or labels:
    # evaluation reloads the images from image_source: a plain folder (labels from its
    # sub-folders) or a prepared directory can be; a zip or a labels file cannot
    raise UserError(f"SRC={src!r}{' with --labels' if labels else ''}: a latent run's "
                    "evaluation reads the source images again, which it can from a folder "
                    "(sub-folders = classes), a prepared directory or TFDS; prepare the images "
                    "first (python -m jaxgan.data.prepare SRC IMAGES --size S ...), then "
                    "encode IMAGES.")
  names, read = prepare_lib.list_images(src)
  label_list, class_names = (prepare_lib.labels_from_json(labels, names) if labels
                             else prepare_lib.labels_from_folders(names))
  images = np.stack([prepare_lib.load_image(read(n), n, size, channels) for n in names])
  lab = None if label_list is None else np.asarray(label_list, np.int32)
  return (sources.ImageData(images, lab, len(class_names), os.path.basename(path),
                            tuple(class_names)),
          {"kind": "folder", "folder": path})


def encode_all(model, images: np.ndarray, batch: int):
  """(means, stds) float32 of uint8 images, in batches of `batch` (the last padded)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  enc = jax.jit(lambda x: model.encode(x.astype(jnp.float32) / 127.5 - 1.0))
  means, stds = [], []
  for lo in range(0, len(images), batch):
    chunk = images[lo:lo + batch]
    n = len(chunk)
    if n < batch:
      chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
    m, s = enc(chunk)
    means.append(np.asarray(m)[:n])
    stds.append(np.asarray(s)[:n])
  return np.concatenate(means), np.concatenate(stds)


def channel_statistics(means: np.ndarray, stds: np.ndarray):
  """Per channel: the mean of the latent means, and the std of z = mean + std * eps over
  the dataset (law of total variance: var of the means + mean of the variances)."""
  m = means.astype(np.float64).reshape(-1, means.shape[-1])
  v = np.square(stds.astype(np.float64)).reshape(-1, stds.shape[-1])
  return m.mean(0).tolist(), np.sqrt(m.var(0) + v.mean(0)).tolist()


def _write(tmp, means, stds, labels, shards):
  from array_record.python import array_record_module as ar  # pylint: disable=g-import-not-at-top
  n, files = len(means), []
  for k in range(shards):
    file = f"data-{k:05d}-of-{shards:05d}.array_record"
    writer = ar.ArrayRecordWriter(os.path.join(tmp, file), records.WRITER_OPTIONS)
    for i in range(n * k // shards, n * (k + 1) // shards):
      writer.write(records.encode_latent(means[i], stds[i], -1 if labels is None else labels[i]))
    writer.close()
    files.append(file)
  return files


def prepare_latents(src: str, out: str, encoder: str, size=0, channels: int = 0,
                    data_dir: str = "", labels: str = "", batch: int = 256, shards: int = 1,
                    overwrite: bool = False) -> dict:
  """Encodes SRC with the autoencoder in `encoder` into a latent dataset at `out`;
  returns its manifest. size/channels 0: the encoder's input channels, and (for TFDS and
  folders) a size to give explicitly."""
  from jaxgan.pretrained import autoencoder_files  # pylint: disable=g-import-not-at-top
  model, sha = autoencoder_files.load(encoder)
  cfg = model.cfg
  channels = channels or cfg.in_channels
  if channels != cfg.in_channels:
    raise UserError(f"--channels={channels}, but the encoder in {encoder!r} takes "
                    f"{cfg.in_channels}-channel images; drop --channels or give "
                    f"{cfg.in_channels}.")
  if not size and not records.is_prepared(os.path.expanduser(src)):
    raise UserError("--size is needed with --encoder for a folder, zip or TFDS source: the "
                    f"image size to encode (a multiple of {cfg.downsampling}).")
  if batch < 1 or shards < 1:
    raise UserError(f"--batch={batch} and --shards={shards} must be at least 1.")
  out_path = pathlib.Path(out).expanduser().absolute()
  prepare_lib.check_out(out_path, overwrite)
  if size and sizes.problem(size):
    raise UserError(f"--size={size}: {sizes.problem(size)} (e.g. --size 64 or --size 32,64).")
  size = sizes.hw(size) if size else 0
  if size and (size[0] % cfg.downsampling or size[1] % cfg.downsampling):
    raise UserError(f"--size={sizes.text(size)}: the encoder in {encoder!r} downsamples "
                    f"{cfg.downsampling}x, so each side must be a multiple of "
                    f"{cfg.downsampling}.")
  data, image_source = load_source(src, size, channels, data_dir, labels)
  size = tuple(data.image_shape[:2])
  if size[0] % cfg.downsampling or size[1] % cfg.downsampling:   # a prepared source's own
    raise UserError(f"--size={sizes.text(size)}: the encoder in {encoder!r} downsamples "
                    f"{cfg.downsampling}x, so each side must be a multiple of "
                    f"{cfg.downsampling}.")
  means, stds = encode_all(model, data.images, batch)
  mean_c, std_c = channel_statistics(means, stds)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  tmp = str(out_path.parent / f".{out_path.name}.tmp-{os.getpid()}")
  os.makedirs(tmp)
  try:
    shards = min(shards, len(means))
    files = _write(tmp, means, stds, data.labels, shards)
    n = len(means)
    manifest = {
        "format": records.FORMAT, "version": records.VERSION, "kind": "latent", "count": n,
        "image_size": sizes.canonical(size), "channels": channels,
        "latent_shape": list(means.shape[1:]),
        "num_classes": data.num_classes, "class_names": list(data.class_names),
        "records": files,
        "record_counts": [n * (k + 1) // shards - n * k // shards for k in range(shards)],
        "sha256": records.sha256_of([os.path.join(tmp, f) for f in files]),
        "source": src, "image_source": {**image_source, "image_size": sizes.canonical(size),
                                        "channels": channels},
        "encoder": {"directory": os.path.abspath(encoder), "weights_sha256": sha,
                    "class_name": cfg.class_name, "scaling_factor": cfg.scaling_factor,
                    "shift_factor": cfg.shift_factor,
                    "config": autoencoder_files.config_json(cfg)},
        "channel_mean": mean_c, "channel_std": std_c,
        "encoding": "int32 little-endian label (-1: none) + float32 mean + float32 std"}
    with open(os.path.join(tmp, records.MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2)
    prepare_lib.move_into_place(tmp, out_path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return manifest
