"""Turn a folder or zip of images into a prepared dataset (ArrayRecord files + manifest).

  python -m jaxgan.data.prepare SRC OUT [--size S] [--channels 1|3] [--labels FILE.json]
                                [--shards N] [--overwrite]

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
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from jaxgan.data import records
from jaxgan.data.resize import preprocess
from jaxgan.data.sources import IMAGE_EXTENSIONS
from jaxgan.base.errors import EXIT_USAGE, UserError, UserFileError


def _is_image(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(src: str) -> Tuple[List[str], Callable[[str], bytes]]:
  """(sorted relative posix paths, a function reading one of them) of a folder or a zip."""
  path = pathlib.Path(src).expanduser()
  if path.is_dir():
    names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                   if p.is_file() and _is_image(p.name))
    read = lambda name: (path / name).read_bytes()
  elif path.is_file() and zipfile.is_zipfile(path):
    archive = zipfile.ZipFile(path)
    names = sorted(n for n in archive.namelist()
                   if not n.endswith("/") and _is_image(n) and not n.startswith("__MACOSX/"))
    read = archive.read
  elif path.exists():
    raise UserError(f"SRC={src!r} is neither a directory nor a .zip archive; pass a folder "
                    "of images or a zip of them.")
  else:
    raise UserFileError(f"SRC={src!r} does not exist; pass a folder of images or a .zip.")
  if not names:
    raise UserFileError(f"SRC={src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}); pass "
                        "a folder or zip with image files.")
  return names, read


def labels_from_json(file: str, names: List[str]) -> Tuple[Optional[List[int]], List[str]]:
  """(label of each name, class names) from dataset_tool's {"labels": [[path, int], ...]}."""
  try:
    with open(os.path.expanduser(file)) as f:
      table = json.load(f)["labels"]
  except OSError as e:
    raise UserFileError(f"--labels={file!r} cannot be read ({e.strerror}); pass the path "
                        "of a dataset.json file.") from None
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"--labels={file!r} is not a dataset.json ({type(e).__name__}: {e}); "
                    'write it as {"labels": [["relative/path.png", 0], ...]}.') from None
  if table is None:   # dataset_tool writes "labels": null for unlabelled data
    return None, []
  try:
    lookup: Dict[str, int] = {str(p).replace("\\", "/"): int(l) for p, l in table}
  except (ValueError, TypeError):
    raise UserError(f"--labels={file!r}: each entry must be [relative path, integer label]; "
                    'write it as {"labels": [["relative/path.png", 0], ...]}.') from None
  missing = [n for n in names if n not in lookup]
  if missing:
    raise UserError(f"--labels={file!r} has no label for image {missing[0]!r} (and "
                    f"{len(missing) - 1} more); give every image of SRC a label.")
  labels = [lookup[n] for n in names]
  if min(labels) < 0:
    raise UserError(f"--labels={file!r}: label {min(labels)} is negative; labels must be "
                    "0, 1, 2, ...")
  return labels, [str(i) for i in range(max(labels) + 1)]


def labels_from_folders(names: List[str]) -> Tuple[Optional[List[int]], List[str]]:
  """Two or more top-level sub-folders holding every image: their names are the classes."""
  parts = [n.split("/") for n in names]
  classes = sorted({p[0] for p in parts if len(p) > 1})
  if len(classes) < 2 or any(len(p) == 1 for p in parts):
    return None, []
  index = {c: i for i, c in enumerate(classes)}
  return [index[p[0]] for p in parts], classes


def load_image(data: bytes, name: str, size: int, channels: int) -> np.ndarray:
  """uint8 [size, size, channels]: Pillow conversion (as load_folder), bilinear resize."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(io.BytesIO(data)) as im:
      arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8)
  except (OSError, ValueError) as e:
    raise UserError(f"Cannot read image {name!r} of SRC: {e}. Remove or fix the file.") from None
  return preprocess(arr.reshape(1, *arr.shape[:2], channels), size, channels)[0]


def _write(tmp: str, names, read, labels, size: int, channels: int, shards: int) -> List[str]:
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


def _check_out(out: pathlib.Path, overwrite: bool) -> None:
  if out.exists() and not out.is_dir():
    raise UserError(f"OUT={str(out)!r} is a file; pass a directory path for the prepared data.")
  if out.is_dir() and any(out.iterdir()) and not overwrite:
    raise UserError(f"OUT={str(out)!r} is not empty; pass another directory, or add "
                    "--overwrite to replace it.")


def _move_into_place(tmp: str, out: pathlib.Path) -> None:
  """Rename the finished temp dir to OUT; an old OUT is removed only after that."""
  old = None
  if out.exists():
    old = str(out) + f".old-{os.getpid()}"
    os.rename(out, old)
  os.rename(tmp, out)
  if old:
    shutil.rmtree(old)


def prepare(src: str, out: str, size: int = 64, channels: int = 3, labels: str = "",
            shards: int = 1, overwrite: bool = False) -> dict:
  """Writes the prepared dataset to `out`; returns its manifest."""
  if not 4 <= size <= 4096:
    raise UserError(f"--size={size}: must be between 4 and 4096 (pixels per side).")
  if channels not in (1, 3):
    raise UserError(f"--channels={channels}: must be 1 (grayscale) or 3 (RGB).")
  if shards < 1:
    raise UserError(f"--shards={shards}: must be at least 1.")
  out_path = pathlib.Path(out).expanduser().absolute()
  _check_out(out_path, overwrite)
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
        "image_size": size, "channels": channels, "num_classes": len(class_names),
        "class_names": class_names, "records": files,
        "record_counts": [n * (k + 1) // shards - n * k // shards for k in range(shards)],
        "sha256": records.sha256_of([os.path.join(tmp, f) for f in files]),
        "source": str(pathlib.Path(src).expanduser().absolute()),
        "encoding": "int32 little-endian label (-1: none) + PNG bytes"}
    with open(os.path.join(tmp, records.MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2)
    _move_into_place(tmp, out_path)
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
  p.add_argument("--size", type=int, default=64, help="resize to SIZE x SIZE (default 64)")
  p.add_argument("--channels", type=int, default=3, help="1 (grayscale) or 3 (RGB)")
  p.add_argument("--labels", default="", help='dataset.json: {"labels": [[path, int], ...]}')
  p.add_argument("--shards", type=int, default=1, help="number of record files")
  p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
  args = p.parse_args(argv)
  try:
    m = prepare(args.src, args.out, args.size, args.channels, args.labels, args.shards,
                args.overwrite)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USAGE
  print(f"Prepared {m['count']} images of {m['image_size']}x{m['image_size']}x"
        f"{m['channels']}, {m['num_classes']} classes, in {len(m['records'])} record "
        f"file(s): {args.out} (sha256 {m['sha256'][:12]})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
