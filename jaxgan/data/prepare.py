"""Turn a folder or zip of images into a prepared dataset (ArrayRecord files + manifest).

  python -m jaxgan.data.prepare SRC OUT [--size S|H,W] [--channels 1|3] [--labels FILE.json]
                                [--shards N] [--overwrite]
  python -m jaxgan.data.prepare SRC OUT --encoder DIR ...   a latent dataset: SRC encoded
                                by an autoencoder (jaxgan/data/encode_latents.py)

Like StyleGAN2-ADA's dataset_tool.py (NVlabs/stylegan2-ada-pytorch): the images are
decoded and resized once, here, instead of at every run; SRC is a directory or a .zip of
PNG/JPEG/BMP/GIF files taken in sorted path order; labels come from a JSON file in
dataset_tool's dataset.json form, {"labels": [["relative/path.png", 3], ...]}, or from two
or more top-level sub-folders (the classes, in sorted order, as `load_folder` reads them).
Each image is converted to `--channels` with Pillow and resized with the same bilinear
filter as the in-memory sources (jaxgan/data/resize.py), so a prepared folder trains on the
same pixels as the folder itself. The output is written to a temporary directory beside
OUT and renamed into place, so OUT is either complete or absent. The format is described
in jaxgan/data/records.py.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
from typing import List

from jaxgan.data import records
from jaxgan.data.image_files import (check_out, labels_from_folders,  # noqa: F401
                                     labels_from_json, list_images, load_image,
                                     move_into_place)
from jaxgan.base import sizes
from jaxgan.base.errors import EXIT_USAGE, UserError


def _write(tmp: str, names, read, labels, size, channels: int, shards: int) -> List[str]:
  """The record files in `tmp`: contiguous runs of examples, `shards` files."""
  from array_record.python import array_record_module as ar  # pylint: disable=g-import-not-at-top
  n, files = len(names), []
  for k in range(shards):
    file = f"data-{k:05d}-of-{shards:05d}.array_record"
    writer = ar.ArrayRecordWriter(os.path.join(tmp, file), records.WRITER_OPTIONS)
    for i in range(n * k // shards, n * (k + 1) // shards):
      image = load_image(read(names[i]), names[i], size, channels)
      writer.write(records.encode(image, -1 if labels is None else labels[i]))
    writer.close()
    files.append(file)
  return files


def prepare(src: str, out: str, size=64, channels: int = 3, labels: str = "",
            shards: int = 1, overwrite: bool = False) -> dict:
  """Writes the prepared dataset to `out`; returns its manifest. `size` is one side (a
  square) or (height, width): every image is resized to it, the aspect ratio not kept."""
  problem = sizes.problem(size)
  if problem:
    raise UserError(f"--size={sizes.text(size) if isinstance(size, int) else size}: "
                    f"{problem} (e.g. --size 64 or --size 32,64).")
  size = sizes.hw(size)
  if channels not in (1, 3):
    raise UserError(f"--channels={channels}: must be 1 (grayscale) or 3 (RGB).")
  if shards < 1:
    raise UserError(f"--shards={shards}: must be at least 1.")
  out_path = pathlib.Path(out).expanduser().absolute()
  check_out(out_path, overwrite)
  names, read = list_images(src)
  shards = min(shards, len(names))
  label_list, class_names = (labels_from_json(labels, names) if labels
                             else labels_from_folders(names))
  out_path.parent.mkdir(parents=True, exist_ok=True)
  tmp = str(out_path.parent / f".{out_path.name}.tmp-{os.getpid()}")
  os.makedirs(tmp)
  try:
    files = _write(tmp, names, read, label_list, size, channels, shards)
    n = len(names)
    manifest = {
        "format": records.FORMAT, "version": records.VERSION, "count": n,
        "image_size": sizes.canonical(size), "channels": channels, "num_classes": len(class_names),
        "class_names": class_names, "records": files,
        "record_counts": [n * (k + 1) // shards - n * k // shards for k in range(shards)],
        "sha256": records.sha256_of([os.path.join(tmp, f) for f in files]),
        "source": str(pathlib.Path(src).expanduser().absolute()),
        "encoding": "int32 little-endian label (-1: none) + PNG bytes"}
    with open(os.path.join(tmp, records.MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2)
    move_into_place(tmp, out_path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return manifest


class _Parser(argparse.ArgumentParser):
  def error(self, message):   # one line and EXIT_USAGE, as launch.py's errors
    self.exit(EXIT_USAGE, f"error: {message} (see python -m jaxgan.data.prepare --help)\n")


def main(argv=None) -> int:
  p = _Parser(prog="python -m jaxgan.data.prepare", description=__doc__.split("\n\n")[0])
  p.add_argument("src", help="folder or .zip of images")
  p.add_argument("out", help="output directory (created)")
  p.add_argument("--size", default=None, help="resize to SIZE x SIZE, or to H,W (height, "
                 "width: e.g. 32,64) (default 64; with --encoder: required for a folder or "
                 "TFDS source)")
  p.add_argument("--channels", type=int, default=None, help="1 (grayscale) or 3 (RGB) "
                 "(default 3; with --encoder: the encoder's)")
  p.add_argument("--labels", default="", help='dataset.json: {"labels": [[path, int], ...]}')
  p.add_argument("--shards", type=int, default=1, help="number of record files")
  p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
  p.add_argument("--encoder", default="", help="a diffusers AutoencoderKL directory: write a "
                 "latent dataset (SRC may also be tfds:NAME[:SPLIT] or a prepared directory)")
  p.add_argument("--data_dir", default="", help="--encoder with tfds:NAME: the TFDS data_dir")
  p.add_argument("--batch", type=int, default=256, help="--encoder: images per encoder call")
  args = p.parse_args(argv)
  try:
    if args.encoder:
      from jaxgan.data import encode_latents  # pylint: disable=g-import-not-at-top
      m = encode_latents.prepare_latents(
          args.src, args.out, args.encoder, args.size or 0, args.channels or 0, args.data_dir,
          args.labels, args.batch, args.shards, args.overwrite)
      print(f"Encoded {m['count']} images of {sizes.times(m['image_size'])}x"
            f"{m['channels']} into latents of {'x'.join(map(str, m['latent_shape']))} "
            f"in {len(m['records'])} record file(s): {args.out} (encoder sha256 "
            f"{m['encoder']['weights_sha256'][:12]})")
      return 0
    m = prepare(args.src, args.out, 64 if args.size is None else args.size,
                3 if args.channels is None else args.channels, args.labels, args.shards,
                args.overwrite)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USAGE
  print(f"Prepared {m['count']} images of {sizes.times(m['image_size'])}x"
        f"{m['channels']}, {m['num_classes']} classes, in {len(m['records'])} record "
        f"file(s): {args.out} (sha256 {m['sha256'][:12]})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
