"""Reading the image files a dataset is made from: a folder or a .zip of PNG/JPEG/BMP/GIF
files in sorted path order, labels from dataset_tool's dataset.json or from top-level
sub-folders, each image converted and resized as the in-memory sources do
(jaxgan/data/resize.py); and writing an output directory atomically. Shared by
`prepare` (image records) and `encode_latents` (latent records)."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from jaxgan.data.resize import preprocess
from jaxgan.base.errors import UserError, UserFileError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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


def load_image(data: bytes, name: str, size, channels: int) -> np.ndarray:
  """uint8 [h, w, channels] for size = h or (h, w): Pillow conversion (as load_folder),
  bilinear resize."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(io.BytesIO(data)) as im:
      arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8)
  except (OSError, ValueError) as e:
    raise UserError(f"Cannot read image {name!r} of SRC: {e}. Remove or fix the file.") from None
  return preprocess(arr.reshape(1, *arr.shape[:2], channels), size, channels)[0]


def check_out(out: pathlib.Path, overwrite: bool) -> None:
  if out.exists() and not out.is_dir():
    raise UserError(f"OUT={str(out)!r} is a file; pass a directory path for the prepared data.")
  if out.is_dir() and any(out.iterdir()) and not overwrite:
    raise UserError(f"OUT={str(out)!r} is not empty; pass another directory, or add "
                    "--overwrite to replace it.")


def move_into_place(tmp: str, out: pathlib.Path) -> None:
  """Rename the finished temp dir to OUT; an old OUT is removed only after that."""
  old = None
  if out.exists():
    old = str(out) + f".old-{os.getpid()}"
    os.rename(out, old)
  os.rename(tmp, out)
  if old:
    shutil.rmtree(old)
