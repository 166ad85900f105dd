"""Choosing the EMA after training: `--mode posthoc_ema` evaluates the generator at a grid
of post-hoc EMA widths sigma_rel (reconstructed from the run's snapshots,
jaxgan/eval/posthoc_ema.py) and writes the metric against sigma_rel, as EDM2's Fig. 5
plots FID against sigma_rel (Karras et al. 2024), with the best value; the report shows
it. `--ema_sigma_rel S` with --mode sample/eval/latent uses one reconstruction.

Every sigma_rel is evaluated with the same seed (the same latents and labels), so the
curve shows the weights' effect, not sampling noise; the checkpoint's own sampling
weights (its fixed EMA, or G when it keeps none) are evaluated alongside as the reference.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import numpy as np

from jaxgan import data as data_lib
from jaxgan.base import rng
from jaxgan.base.errors import UserError
from jaxgan.config import apply_eval_overrides
from jaxgan.eval.metrics import METRICS
from jaxgan.run import restore

DEFAULT_SIGMA_RELS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2, 0.25)
JSON, PLOT = "posthoc_ema.json", "posthoc_ema.png"


def _say(msg: str) -> None:
  if jax.process_index() == 0:
    print(msg, flush=True)


def parse_sigma_rels(text: str) -> tuple:
  try:
    values = tuple(float(x) for x in text.split(",") if x.strip())
  except ValueError:
    values = ()
  if not values:
    raise UserError(f"--sigma_rels={text!r}: give comma-separated widths, e.g. "
                    "0.02,0.05,0.1,0.15,0.2.")
  return values


def _minimized(name: str) -> bool:
  return any(name in METRICS.get(m).minimize for m in METRICS.names())


def sweep(workdir: str, sigma_rels: Sequence[float] = DEFAULT_SIGMA_RELS,
          which: str = "latest", num_samples: int = 0, seed: int = 0, metrics: str = "",
          overrides=()) -> dict:
  """Evaluates each post-hoc sigma_rel and the checkpoint's own weights; writes
  DIR/posthoc_ema.json and DIR/posthoc_ema.png; returns what the JSON holds."""
  from jaxgan.eval.evaluate import Evaluator  # pylint: disable=g-import-not-at-top
  config, gan, state = restore.restore_for_sampling(workdir, which)
  apply_eval_overrides(config, overrides)
  name = config.eval.best_metric
  data = data_lib.open_for_eval(config.data, config.eval.max_real_features, say=_say)
  evaluator = Evaluator(config, data, log=_say, metrics=metrics or config.eval.metrics)
  num = num_samples or config.eval.num_samples
  key = rng.stream(rng.root_key(seed), "posthoc_ema")

  def score(st) -> dict:
    out = evaluator.evaluate_generator(gan, st, num, key, seed=seed)
    if name not in out:
      raise UserError(f"config.eval.best_metric={name!r} is not among the metrics computed "
                      f"({', '.join(k for k, v in out.items() if isinstance(v, float))}); "
                      "pass --metrics with its metric, or --config.eval.best_metric=...")
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}

  reference = {"weights": "ema" if state.ema is not None else "generator", **score(state)}
  rows = []
  for s in sigma_rels:
    st, info = restore.with_posthoc_ema(workdir, config, state, s, flag="--sigma_rels")
    rows.append({**score(st), **info})
    _say(f"sigma_rel {s:.3f}: {name} {rows[-1][name]:.4g}")
  pick = min if _minimized(name) else max
  best = pick(rows, key=lambda r: r[name])
  result = {"metric": name, "step": int(state.step), "checkpoint": which,
            "num_samples": num, "seed": seed, "rows": rows, "best": best,
            "reference": reference}
  with open(os.path.join(workdir, JSON), "w") as f:
    json.dump(result, f, indent=1)
  plot(result, os.path.join(workdir, PLOT))
  _say(f"Best post-hoc EMA: sigma_rel {best['sigma_rel']:.3f} ({name} {best[name]:.4g}; the "
       f"checkpoint's {reference['weights']}: {reference[name]:.4g}).")
  return result


def plot(result: dict, path: str) -> str:
  """The metric against sigma_rel, the best marked, the checkpoint's weights as a line."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  name = result["metric"]
  xs = np.array([r["sigma_rel"] for r in result["rows"]])
  ys = np.array([r[name] for r in result["rows"]])
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
  ax.plot(xs, ys, "o-", label="post-hoc EMA")
  ax.plot([result["best"]["sigma_rel"]], [result["best"][name]], "r*", ms=12,
          label=f"best: {result['best']['sigma_rel']:.3f}")
  ref = result["reference"]
  ax.axhline(ref[name], color="gray", ls="--", label=f"checkpoint's {ref['weights']}")
  ax.set_xlabel("sigma_rel")
  ax.set_ylabel(name)
  ax.set_title(f"post-hoc EMA at step {result['step']}")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def read(workdir: str):
  """The sweep's results of `workdir`, or None."""
  path = os.path.join(workdir, JSON)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
