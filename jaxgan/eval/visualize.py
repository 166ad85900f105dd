"""Pictures of a run: image grids (PNG) and loss curves (PNG, matplotlib Agg)."""
from __future__ import annotations

import json
import math
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 [0, 255] (the inverse of the data scaling), rounded."""
  x = (np.asarray(images, np.float32) + 1.0) * 127.5
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, ncol: Optional[int] = None, pad: int = 2,
         pad_value: int = 255) -> np.ndarray:
  """Tiles uint8 [N, H, W, C] images into one [rows*(H+pad)+pad, ...] image, row-major."""
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"grid() expects [N, H, W, C] images, got shape {images.shape}.")
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, images.dtype)
  for i in range(n):
    r, col = divmod(i, ncol)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    out[y:y + h, x:x + w] = images[i]
  return out


def save_png(image: np.ndarray, path: str, scale: int = 1) -> str:
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  im = Image.fromarray(image)
  if scale > 1:
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.png"
  im.save(tmp)
  os.replace(tmp, path)
  return path


def save_grid(images: np.ndarray, path: str, ncol: Optional[int] = None) -> str:
  """Saves uint8 images as a grid PNG; small images are enlarged (nearest) for viewing."""
  return save_png(grid(images, ncol), path, scale=max(1, 112 // max(images.shape[1:3])))


def read_jsonl(path: str) -> list:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_metrics(metrics_path: str, out_path: str,
                 groups: Sequence[Sequence[str]] | None = None) -> Optional[str]:
  """Loss curves (and D(x), D(G(z))) against the step, from metrics.jsonl."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = read_jsonl(metrics_path) if os.path.exists(metrics_path) else []
  rows = [r for r in rows if "step" in r]
  if not rows:
    return None
  keys = sorted({k for r in rows for k in r})
  if groups is None:
    groups = [[k for k in keys if k.endswith("_loss")],
              [k for k in keys if k in ("d_x", "d_g_z")],
              [k for k in keys if k.endswith("_acc")]]
  groups = [g for g in groups if g]
  fig, axes = plt.subplots(len(groups), 1, figsize=(8, 3 * len(groups)), squeeze=False)
  for ax, group in zip(axes[:, 0], groups):
    for k in group:
      pts = [(r["step"], r[k]) for r in rows if k in r and r[k] is not None]
      if pts:
        ax.plot(*zip(*pts), label=k)
    ax.set_xlabel("generator step")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path, dpi=100)
  plt.close(fig)
  return out_path
