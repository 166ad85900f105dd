"""Fine-tuning: a new run that starts from another run's weights (`config.init_from`).

What GAN users ask for most after resuming (stylegan3 #71, #134; stylegan2-ada-pytorch
#159), as StyleGAN2-ADA's `--resume=PKL` does for a new dataset: the new run takes G, G's
EMA and D (`init_from_parts='g_d'`) or G and its EMA only (`'g'`, D as initialised) from
the source's checkpoint, `WORKDIR` (its latest) or `WORKDIR:STEP`. Everything else starts
fresh: the step (so schedules and the EMA ramp-up restart), the optimizer states (Adam's
moments of another dataset would steer the first steps), ADA's p, regularizer states and
the post-hoc EMA profiles (which start at the source's G). With `model.freeze_d` and ADA
(`augment.policy='ada'`) this is the recipe for a small target dataset (Mo et al. 2020;
Karras et al. 2020, sec. 4).

The source must have the same architecture and sizes: every parameter (and statistic)
taken must have this config's shape, or the run stops with one line naming the layers that
differ. The new run writes `init_from.json` (source, step, parts) into its workdir; once it
has its own checkpoint it resumes from that like any run, bit-exactly, and a run stopped
before its first checkpoint starts again from the same source weights.
"""
from __future__ import annotations

import json
import os
from typing import Tuple

import jax
import numpy as np

from jaxgan.base.errors import UserError
from jaxgan.run import checkpoint as ckpt_lib, restore

RECORD = "init_from.json"


def parse(spec: str) -> Tuple[str, str]:
  """'WORKDIR' or 'WORKDIR:STEP' -> (workdir, 'latest' or the step)."""
  head, sep, tail = spec.rpartition(":")
  if sep and tail.isdigit() and head:
    return head, tail
  return spec, "latest"


def _shapes(tree, prefix: str) -> dict:
  """{'prefix/layer/.../leaf': shape} of a tree of arrays (nnx state), named as the
  checkpoint names its leaves, without nnx's trailing '/value'."""
  return {f"{prefix}/{name.removesuffix('/value')}": tuple(np.shape(v))
          for name, v in ckpt_lib.leaf_paths(tree).items()}


def _check(spec: str, ours: dict, theirs: dict, parts: str) -> None:
  bad = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
  if not bad:
    return
  show = lambda k: (f"{k} {theirs.get(k, 'missing')} there, {ours.get(k, 'missing')} here")
  more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
  hint = "" if parts == "g" else ", or take G only with --config.init_from_parts=g"
  raise UserError(f"config.init_from={spec!r}: {len(bad)} layer(s) differ from this "
                  f"config's: {'; '.join(show(k) for k in bad[:3])}{more}. Fine-tune from a "
                  f"run of the same architecture and sizes (config.model.*){hint}.")


def initial_state(spec: str, parts: str, initial):
  """This config's initial state with the source's weights in it, and the record of them."""
  workdir, which = parse(spec)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"config.init_from={spec!r}: no run there ({workdir!r} has no "
                    "checkpoints/); give the workdir of a trained run, optionally :STEP.")
  try:
    _, _, src = restore.restore_for_sampling(workdir, which)
  except UserError as e:
    raise UserError(f"config.init_from={spec!r}: {e}") from None
  take = {"g": src.g.params, "g_stats": src.g.stats}
  mine = {"g": initial.g.params, "g_stats": initial.g.stats}
  if parts == "g_d":
    take.update(d=src.d.params, d_stats=src.d.stats)
    mine.update(d=initial.d.params, d_stats=initial.d.stats)
  _check(spec, {k: s for n, t in mine.items() for k, s in _shapes(t, n).items()},
         {k: s for n, t in take.items() for k, s in _shapes(t, n).items()}, parts)
  cast = lambda new, like: jax.tree.map(lambda a, b: jax.numpy.asarray(a, b.dtype), new, like)
  g = initial.g.replace(params=cast(src.g.params, initial.g.params),
                        stats=cast(src.g.stats, initial.g.stats))
  d = initial.d
  if parts == "g_d":
    d = d.replace(params=cast(src.d.params, d.params), stats=cast(src.d.stats, d.stats))
  ema = initial.ema
  if ema is not None:
    ema = cast(src.ema if src.ema is not None else src.g.params, ema)
  phema = initial.phema
  if phema is not None:
    phema = tuple(jax.tree.map(jax.numpy.copy, g.params) for _ in phema)
  record = {"init_from": os.path.abspath(workdir), "step": int(np.asarray(src.step)),
            "parts": parts, "ema": src.ema is not None}
  return initial.replace(g=g, d=d, ema=ema, phema=phema), record


def recorded(workdir: str) -> str:
  """'SOURCE:STEP' from the workdir's record, or '' when it has none."""
  try:
    with open(os.path.join(workdir, RECORD)) as f:
      r = json.load(f)
    return f"{r['init_from']}:{int(r['step'])}"
  except (OSError, ValueError, KeyError, TypeError):
    return ""


def write_record(workdir: str, record: dict) -> None:
  """init_from.json in the new run's workdir, atomically."""
  path = os.path.join(workdir, RECORD)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, path)
