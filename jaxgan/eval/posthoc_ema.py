"""Post-hoc EMA on disk: the snapshots a run saves of its power-function EMA profiles, and
G's weights for any sigma_rel reconstructed from them (EDM2's post-hoc EMA; the math is
jaxgan/core/phema.py).

A snapshot is one safetensors file, DIR/phema/snapshot-<images, 12 digits>.safetensors,
holding only the profiles (G's EMA weights, float32: exactness matters more than the
disk here, where EDM2 stores float16) under "<profile index>/<parameter path>", and in
its metadata the G step, the exact number of images (steps x G's batch) and the
profiles' sigma_rels. Files are written to a temporary name and renamed, so a kill never
leaves half a snapshot; a resumed run writes the snapshots after its checkpoint again,
bit-identical (the train state, profiles included, resumes bit-exactly).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from typing import List, Optional, Sequence, Tuple

import jax
import numpy as np

from jaxgan.base.errors import UserError
from jaxgan.core import phema

DIRNAME = "phema"
FORMAT = "jaxgan-phema-1"
_NAME = re.compile(r"^snapshot-(\d{12})\.safetensors$")


@dataclasses.dataclass(frozen=True)
class Snapshot:
  images: int
  step: int
  sigma_rels: Tuple[float, ...]
  path: str


def snapshot_dir(workdir: str) -> str:
  return os.path.join(workdir, DIRNAME)


def _flat(tree) -> dict:
  return {jax.tree_util.keystr(path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def write(workdir: str, step: int, images: int, sigma_rels: Sequence[float], profiles) -> str:
  """Writes the snapshot of `profiles` (one parameter tree per sigma_rel) after G step
  `step`, `images` images; returns its path."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  directory = snapshot_dir(workdir)
  os.makedirs(directory, exist_ok=True)
  tensors = {f"{i}/{k}": np.ascontiguousarray(np.asarray(v, np.float32))
             for i, prof in enumerate(profiles) for k, v in _flat(prof).items()}
  meta = {"format": FORMAT, "step": str(int(step)), "images": str(int(images)),
          "sigma_rels": json.dumps([float(s) for s in sigma_rels])}
  path = os.path.join(directory, f"snapshot-{int(images):012d}.safetensors")
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-snapshot-")
  os.close(fd)
  try:
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def list_snapshots(workdir: str) -> List[Snapshot]:
  """The run's snapshots, by images."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  directory = snapshot_dir(workdir)
  names = sorted(n for n in os.listdir(directory) if _NAME.match(n)) if os.path.isdir(
      directory) else []
  out = []
  for name in names:
    path = os.path.join(directory, name)
    try:
      with safe_open(path, "np") as f:
        meta = f.metadata() or {}
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"{path}: not a readable post-hoc EMA snapshot ({e}); delete it.") from None
    if meta.get("format") != FORMAT:
      raise UserError(f"{path}: not a jaxgan post-hoc EMA snapshot (format "
                      f"{meta.get('format')!r}); move it out of {directory}.")
    out.append(Snapshot(int(meta["images"]), int(meta["step"]),
                        tuple(json.loads(meta["sigma_rels"])), path))
  return out


def _profiles(snapshot: Snapshot, template):
  """Each profile of `snapshot` as a tree shaped like `template` (G's parameters)."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  keys = list(_flat(template))
  treedef = jax.tree.structure(template)
  with safe_open(snapshot.path, "np") as f:
    for i in range(len(snapshot.sigma_rels)):
      try:
        leaves = [f.get_tensor(f"{i}/{k}") for k in keys]
      except Exception:  # pylint: disable=broad-except
        raise UserError(f"{snapshot.path}: its weights do not match this run's generator "
                        "(another model's snapshot?); move it out of the phema folder.") from None
      yield jax.tree.unflatten(treedef, leaves)


def reconstruct(workdir: str, template, sigma_rel: float, at_images: Optional[int] = None,
                flag: str = "--ema_sigma_rel"):
  """(G's parameters for the power-function EMA of width `sigma_rel` at the snapshot with
  the most images <= at_images (default: the last), info). Every snapshot up to it enters
  EDM2's least-squares solve, each with all its profiles."""
  snaps = [s for s in list_snapshots(workdir) if s.images > 0]
  if at_images is not None:
    snaps = [s for s in snaps if s.images <= at_images]
  if not snaps:
    raise UserError(f"{flag}={sigma_rel}: {snapshot_dir(workdir)!r} holds no post-hoc EMA "
                    "snapshot" + (f" up to {at_images} images" if at_images is not None else "")
                    + "; train with --config.phema.sigma_rels=0.05,0.1 to keep them.")
  if not 0 < sigma_rel < phema.MAX_SIGMA_REL:
    raise UserError(f"{flag}={sigma_rel}: must be in (0, sqrt(1/12) = 0.28868); the "
                    f"run's profiles are {list(snaps[-1].sigma_rels)}.")
  at = snaps[-1].images
  in_t = [s.images for s in snaps for _ in s.sigma_rels]
  in_sigma = [x for s in snaps for x in s.sigma_rels]
  coef = phema.solve_coefficients(in_t, in_sigma, at, [sigma_rel])[:, 0]
  trees = (tree for s in snaps for tree in _profiles(s, template))
  params = phema.combine(coef, trees)
  info = {"sigma_rel": float(sigma_rel), "images": at, "step": snaps[-1].step,
          "snapshots": len(snaps), "profiles": len(in_t),
          "max_abs_coefficient": float(np.max(np.abs(coef)))}
  return params, info
