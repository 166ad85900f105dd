"""What gradient accumulation and rematerialisation cost and save: one train step of a config
at each `train.grad_accum` x `train.remat`, its time (median of timed calls after a warm-up)
and XLA's memory plan of the compiled step (temporaries: the activations and workspaces
live at the peak; arguments and outputs are the train state and batch, the same for all).

  python -m benchmarks.grad_accum [--config configs/r3gan2.py:fashion] [--accum 1,2,4]
                                  [--calls 5]

Prints one markdown row per setting, and the ratios to grad_accum=1 without remat. The
update is the same in every row (tests/test_grad_accum.py); only speed and memory differ.
"""
from __future__ import annotations

import argparse
import importlib
import time

import jax
import numpy as np

from jaxgan import config as config_lib
from jaxgan.base import sizes
from jaxgan.core import state as state_lib, train_step as ts
from jaxgan.run import platform


def _config(spec: str):
  path, _, variant = spec.partition(":")
  module = importlib.import_module(path.replace("/", ".").removesuffix(".py"))
  return module.get_config(variant) if variant else module.get_config()


def measure(config, accum: int, remat: bool, calls: int):
  c = config_lib.resolved_copy(config)
  c.train.grad_accum, c.train.remat = accum, remat
  (h, w), ch = sizes.hw(c.data.image_size), int(c.data.channels)
  gan, state = state_lib.create(c, (h, w, ch), 10)
  n, b = int(c.train.n_critic), int(c.data.batch_size)
  batch = {"images": np.random.RandomState(0).randint(0, 256, (n, b, h, w, ch)
                                                      ).astype(np.uint8)}
  if gan.num_classes:
    batch["labels"] = np.zeros((n, b), np.int32)
  with platform.speedups(c.train.cpu_conv):
    compiled = jax.jit(ts.make_train_step(gan, c)).lower(state, batch).compile()
  mem = compiled.memory_analysis()
  temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
  state, _ = compiled(state, batch)       # warm-up
  jax.block_until_ready(state)
  times = []
  for _ in range(calls):
    t = time.perf_counter()
    state, m = compiled(state, batch)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t)
  return float(np.median(times)), temp


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="configs/r3gan2.py:fashion")
  p.add_argument("--accum", default="1,2,4")
  p.add_argument("--calls", type=int, default=5)
  args = p.parse_args()
  config = _config(args.config)
  print(f"{args.config}, batch {config.data.batch_size}, {jax.devices()[0].device_kind}")
  print("| grad_accum | remat | step s | temp MiB | time / base | temp / base |")
  print("|---:|---|---:|---:|---:|---:|")
  base = None
  for remat in (False, True):
    for accum in (int(a) for a in args.accum.split(",")):
      s, temp = measure(config, accum, remat, args.calls)
      base = base or (s, temp)
      mib = f"{temp / 2**20:.1f}" if temp is not None else "n/a"
      ratio = f"{temp / base[1]:.2f}" if temp and base[1] else "n/a"
      print(f"| {accum} | {remat} | {s:.3f} | {mib} | {s / base[0]:.2f} | {ratio} |",
            flush=True)


if __name__ == "__main__":
  main()
