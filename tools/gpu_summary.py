"""The README's GPU table from tools/gpu_table.sh's records.

    python tools/gpu_summary.py OUT_DIR

One row per model: PyTorch eager and torch.compile (seconds per iteration, one iteration =
n_critic D steps + one G step), then jaxgan at 1 step per call in float32, at K steps per
call in float32 and in bfloat16 (seconds per step), and jaxgan's speed-up over each peer.
"""
from __future__ import annotations

import json
import os
import sys


def _read(path: str) -> list:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(l) for l in f if l.startswith("{")]


def _ms(x):
  return f"{1e3 * x:.2f}" if x else "–"


def table(out_dir: str) -> str:
  jax_recs, torch_recs = _read(os.path.join(out_dir, "jax.jsonl")), _read(
      os.path.join(out_dir, "torch.jsonl"))
  models = list(dict.fromkeys(r["model"] for r in jax_recs + torch_recs))
  rows = ["| model | torch eager ms | torch.compile ms | jaxgan f32 ms | jaxgan f32 K ms | "
          "jaxgan bf16 K ms | best jaxgan vs eager | vs compile |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for m in models:
    peer = {r["peer"].split("_")[1]: r.get("s_per_iter_median") for r in torch_recs
            if r["model"] == m}
    mine = {(r["steps_per_call"], r["dtype"]): r["s_per_step_median"] for r in jax_recs
            if r["model"] == m}
    k = max((s for s, _ in mine), default=1)
    f32 = mine.get((1, "float32"))
    f32k, bf16k = (mine.get((k, "float32")), mine.get((k, "bfloat16"))) if k > 1 else (None,
                                                                                       None)
    best = min((v for v in (f32, f32k, bf16k) if v), default=None)
    ratio = lambda p: f"{p / best:.2f}x" if p and best else "–"
    rows.append(f"| {m} | {_ms(peer.get('eager'))} | {_ms(peer.get('compile'))} | {_ms(f32)} "
                f"| {_ms(f32k)} | {_ms(bf16k)} | {ratio(peer.get('eager'))} | "
                f"{ratio(peer.get('compile'))} |")
  return "\n".join(rows)


if __name__ == "__main__":
  print(table(sys.argv[1]))
