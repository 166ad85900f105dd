"""Seeded sweeps: trials defined in the config file, run one by one (resumable) or as a
vmapped population, and one table at the end.

A config file defines its trials with a `sweep()` function returning a list of override
dicts, built with `product` (a grid) and `zip_` (paired lists):

    def sweep():
      return sweep_lib.product(**{"optim.d.lr": [1e-4, 2e-4], "seed": [0, 1, 2]})

`launch.py --config FILE --sweep` runs them; `--seeds 0,1,2,3` repeats one config over
seeds; `--population` trains them together in one compiled program (jaxgan.run.population).

On a cluster, each machine runs a part of one sweep in the same (shared) workdir:
`--trial_index I` runs trial I alone (a SLURM array task, a Kubernetes indexed job);
`--num_shards N --shard_index I` runs trials I, I + N, I + 2N, ... (`select`). A part that
ends writes the table once every trial is finished; `--collect` writes it from whatever
has finished so far, training nothing.
"""
from __future__ import annotations

import csv
import glob
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from jaxgan.run import checkpoint as ckpt_lib
from jaxgan.base.errors import UserError
from jaxgan.run.trials import (Trial, apply, group_name, load_trials,  # noqa: F401
                               parse_seeds, product, seeds, select, trial_name, zip_)

def check_trials(config, trials: List[Trial]) -> None:
  """Refuses a sweep with a trial listed twice, or whose configs are invalid, before any
  of them trains."""
  from jaxgan.run import validate  # pylint: disable=g-import-not-at-top
  names = [trial_name(t) for t in trials]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    raise UserError(f"--seeds/--sweep: trial(s) {', '.join(dup)} listed twice; give each seed "
                    "or trial once.")
  for t in trials:
    validate.validate(apply(config, t))


def is_finished(workdir: str, steps: int) -> bool:
  d = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(d):
    return False
  ck = ckpt_lib.Checkpointer(d, async_save=False)
  latest = ck.latest_step()
  ck.close()
  return latest is not None and latest >= steps


def run_sequential(config, trials: List[Trial], workdir: str, log=print,
                   indices: Optional[Sequence[int]] = None) -> List[dict]:
  """Trains trials in workdir/<trial name> (those at `indices` of the sweep, default all);
  finished trials are skipped and unfinished ones resume from their last checkpoint."""
  from jaxgan.run import train  # pylint: disable=g-import-not-at-top
  done = []
  for i in range(len(trials)) if indices is None else indices:
    t = trials[i]
    c = apply(config, t)
    wd = os.path.join(workdir, trial_name(t))
    if is_finished(wd, c.train.steps):
      log(f"[{i + 1}/{len(trials)}] {trial_name(t)}: finished, skipped")
    else:
      log(f"[{i + 1}/{len(trials)}] {trial_name(t)}")
      train.train_and_evaluate(c, wd)
    done.append({"trial": trial_name(t), "workdir": wd, "overrides": t})
  return done


def finished(config, trials: List[Trial], workdir: str) -> List[Trial]:
  """The trials whose workdirs hold a checkpoint at their config's last step."""
  return [t for t in trials
          if is_finished(os.path.join(workdir, trial_name(t)), apply(config, t).train.steps)]


def run(config, trials: List[Trial], workdir: str, *, indices: Optional[Sequence[int]] = None,
        collect: bool = False, log=print) -> Optional[Dict[str, str]]:
  """`--sweep`/`--seeds` without `--population`. The whole sweep (indices None) holds the
  sweep directory's lock and ends with the table. A part (`select`) trains its trials,
  each under its own trial directory's lock so parts run at once on many machines, and
  writes the table only when every trial of the sweep is finished. `collect` trains
  nothing and writes the table of the trials that have metrics so far."""
  from jaxgan.run import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  workdir_lib.prepare(workdir)
  if collect:
    started = [t for t in trials
               if os.path.exists(os.path.join(workdir, trial_name(t), "metrics.jsonl"))]
    if not started:
      raise UserError(f"--collect: none of the {len(trials)} trials has metrics in "
                      f"{workdir!r} yet; train them first (--trial_index or --shard_index).")
    done = finished(config, trials, workdir)
    log(f"--collect: {len(done)} of {len(trials)} trials finished, {len(started)} with "
        "metrics; the table covers those with metrics.")
    return summarize(workdir, started, log)
  if indices is None:
    with workdir_lib.lock_for_training(workdir):
      run_sequential(config, trials, workdir, log)
    return summarize(workdir, trials, log)
  run_sequential(config, trials, workdir, log, indices)
  done = finished(config, trials, workdir)
  if len(done) < len(trials):
    log(f"{len(done)} of {len(trials)} trials of the sweep are finished; the last part to "
        "end writes the table (or run the same command with --collect for it now).")
    return None
  return summarize(workdir, trials, log)


def _last_rows(path: str):
  last, last_eval = {}, {}
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        r = json.loads(line)
        if any(k.startswith("eval/") for k in r):
          last_eval = r
        else:
          last = r
  return last, last_eval


def summarize(workdir: str, trials: List[Trial], log=print) -> Dict[str, str]:
  """Final metrics of every trial and mean +- std over seeds of each config, as CSV and
  Markdown in `workdir` (printed too), and a PNG with one sample grid per trial."""
  rows = []
  for t in trials:
    wd = os.path.join(workdir, trial_name(t))
    last, last_eval = _last_rows(os.path.join(wd, "metrics.jsonl"))
    row = {"trial": trial_name(t), "config": group_name(t), "seed": t.get("seed", ""),
           "step": last.get("step", "")}
    for k, v in {**last, **last_eval}.items():
      if (k.endswith("_loss") or k.startswith("eval/") or k in ("d_x", "d_g_z")) and \
          isinstance(v, (int, float)):
        row[k] = v
    rows.append(row)
  cols = ["trial", "config", "seed", "step"] + sorted({k for r in rows for k in r} -
                                                      {"trial", "config", "seed", "step"})
  csv_path = os.path.join(workdir, "sweep.csv")
  with open(csv_path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
  metrics = cols[4:]
  lines = ["| trial | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
  for r in rows:
    lines.append(f"| {r['trial']} | " + " | ".join(
        f"{r[m]:.4g}" if m in r else "" for m in metrics) + " |")
  lines += ["", "| config (over seeds) | n | " + " | ".join(metrics) + " |",
            "|---|---:|" + "---:|" * len(metrics)]
  for g in dict.fromkeys(r["config"] for r in rows):
    members = [r for r in rows if r["config"] == g]
    cells = []
    for m in metrics:
      v = np.array([r[m] for r in members if m in r], np.float64)
      cells.append(f"{v.mean():.4g} ± {v.std(ddof=1) if len(v) > 1 else 0:.2g}" if len(v) else "")
    lines.append(f"| {g} | {len(members)} | " + " | ".join(cells) + " |")
  md = "\n".join(lines) + "\n"
  md_path = os.path.join(workdir, "sweep.md")
  with open(md_path, "w") as f:
    f.write(md)
  log(md)
  return {"csv": csv_path, "md": md_path, "png": _grids_png(workdir, trials)}


def _grids_png(workdir: str, trials: List[Trial]) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  n = len(trials)
  cols = min(4, n)
  rows = math.ceil(n / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.5 * rows), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for ax, t in zip(axes.flat, trials):
    grids = sorted(glob.glob(os.path.join(workdir, trial_name(t), "samples", "step_*.png")))
    if grids:
      with Image.open(grids[-1]) as im:
        ax.imshow(np.asarray(im), cmap="gray")
    ax.set_title(trial_name(t), fontsize=7)
  fig.tight_layout()
  path = os.path.join(workdir, "sweep_samples.png")
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path
