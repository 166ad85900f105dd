"""Steps per call and compute dtype, timed side by side on any backend.

    python -m benchmarks.bench --model mlp_gan --steps_per_call 10 [--dtype bfloat16]
                           [--call_loop unroll|scan|auto]

times the pinned model's real train step (benchmarks.bench.pinned_config) as the training
loop runs it: one compiled call per step in float32 (the reference), then K steps per
call (jaxgan/core/multistep.py) in float32, then K steps per call in the chosen dtype, taking
the settings in turn in every repeat so that all see the same machine. Batches are random images already on the device (one
[K, n_critic, B, ...] array per call): what is timed is dispatch plus compute, the part
that steps_per_call and bfloat16 change. Needs no ../shared harness (for GPU machines).
Prints one JSON record per setting and the ratio on stderr; with `flops`, also the FLOPs
of one iteration from XLA's cost analysis, the FLOP/s reached and, on a GPU or TPU (or
with a peak given), the fraction of the device's peak (benchmarks/bench_flops.py).
"""
from __future__ import annotations

import functools
import statistics
import time

import jax
import numpy as np

from jaxgan.base import sizes
from jaxgan.core import multistep, state as state_lib, train_step
from jaxgan.base import sharding


def _program(model: str, per_call: int, dtype: str, loop: str, make_config):
  """(call, state, batches): `call` runs per_call steps of `model` in `dtype`."""
  c = make_config(model)
  c.train.dtype, c.train.steps_per_call, c.train.call_loop = dtype, per_call, loop
  shape = (*sizes.hw(c.data.image_size), c.data.channels)
  gan, state = state_lib.create(c, shape, 0)
  step = train_step.make_train_step(gan, c)
  one = functools.partial(step, pattern=None)
  mesh = sharding.make_mesh(0)
  repl = sharding.replicated(mesh)
  if per_call == 1:
    fn, axis = one, 1
  else:
    fn = multistep.chain([one] * per_call, multistep.resolved_loop(c) == "scan")
    axis = 2
  call = jax.jit(fn, in_shardings=(repl, sharding.batch_sharding(mesh, axis)),
                 out_shardings=(repl, repl), donate_argnums=0)
  gen = np.random.default_rng(0)
  lead = (per_call,) if per_call > 1 else ()
  batches = [sharding.put_batch({"images": gen.integers(
      0, 256, (*lead, c.train.n_critic, c.data.batch_size, *shape), dtype=np.uint8)}, mesh,
      axis) for _ in range(2)]
  return call, jax.device_put(state, repl), batches


def _time_steps(box, steps: int) -> float:
  """Seconds per train step over `steps` steps of the program in `box`."""
  call, state, batches, per_call = box["call"], box["state"], box["batches"], box["k"]
  calls = max(1, steps // per_call)
  t0 = time.perf_counter()
  metrics = None
  for i in range(calls):
    state, metrics = call(state, batches[i % 2])
  jax.block_until_ready(metrics)
  box["state"] = state
  return (time.perf_counter() - t0) / (calls * per_call)


def settings_for(per_call: int, dtype: str) -> list:
  """(steps per call, dtype) pairs to time: the float32 single step first (the reference),
  then K steps per call in float32, then the dtype at K steps per call (alone at 1 step per
  call when K is 1)."""
  out = []
  for s in ((1, "float32"), (per_call, "float32"), (per_call, dtype)):
    if s not in out:
      out.append(s)
  return out


def bench_calls(model: str, per_call: int, dtype: str, loop: str, seconds: float,
                repeats: int, make_config, log=print, *, flops: bool = False,
                peak_tflops: float = 0.0) -> list:
  """One record per setting of `settings_for`, the settings timed in turn each repeat;
  with `flops`, each with FLOPs per iteration and FLOP/s (`_add_flops`)."""
  settings = settings_for(per_call, dtype)
  boxes = []
  for k, dt in settings:
    t0 = time.perf_counter()
    call, state, batches = _program(model, k, dt, loop, make_config)
    box = {"call": call, "state": state, "batches": batches, "k": k}
    _time_steps(box, k)                       # compile and first call
    box["first_call_s"] = time.perf_counter() - t0
    per_step = _time_steps(box, max(k, 3 * k))
    box["steps"] = max(k, int(seconds / max(per_step, 1e-6)) // k * k)
    box["times"] = []
    boxes.append(box)
    log(f"{model}: steps_per_call={k} dtype={dt} compiled in {box['first_call_s']:.1f} s")
  for _ in range(repeats):
    for box in boxes:
      box["times"].append(_time_steps(box, box["steps"]))
  out = []
  for (k, dt), box in zip(settings, boxes):
    med = statistics.median(box["times"])
    out.append({"model": model, "steps_per_call": k, "dtype": dt,
                "call_loop": loop if k > 1 else "-", "s_per_step_median": med,
                "s_per_step_min": min(box["times"]), "steps_per_s": 1.0 / med,
                "first_call_s": box["first_call_s"], "repeats": repeats,
                "platform": jax.devices()[0].platform,
                "device": jax.devices()[0].device_kind})
  for rec in out[1:]:
    rec["speedup_vs_1_float32"] = out[0]["s_per_step_median"] / rec["s_per_step_median"]
    log(f"{model}: {rec['steps_per_call']} steps/call in {rec['dtype']}: "
        f"{rec['steps_per_s']:.1f} steps/s against {out[0]['steps_per_s']:.1f} at 1 step/call "
        f"in float32 ({rec['speedup_vs_1_float32']:.2f}x)")
  if flops:
    _add_flops(out, model, make_config, peak_tflops, log)
  return out


def _add_flops(records, model: str, make_config, peak_tflops: float, log) -> None:
  """FLOPs per iteration (one costing per dtype: they do not depend on the steps per call,
  see benchmarks/bench_flops.py) and the rates, added to the records after all timing."""
  from benchmarks import bench_flops  # pylint: disable=g-import-not-at-top
  per_dtype = {}
  for rec in records:
    if rec["dtype"] not in per_dtype:
      try:
        per_dtype[rec["dtype"]] = bench_flops.step_flops(model, rec["dtype"], make_config)
      except Exception as e:  # pylint: disable=broad-except  # keep the timings measured
        log(f"{model}: costing the {rec['dtype']} step failed: {e!r}")
        per_dtype[rec["dtype"]] = {"flops": None}
    bench_flops.add_rates(rec, per_dtype[rec["dtype"]], peak_tflops)
    if rec.get("flops") is None:
      log(f"{model}: no FLOP count from XLA's cost analysis on this backend")
      continue
    share = (f", {100 * rec['peak_fraction']:.2f}% of peak ({rec['peak_source']})"
             if "peak_fraction" in rec else "")
    log(f"{model}: {rec['steps_per_call']} steps/call in {rec['dtype']}: "
        f"{rec['flops'] / 1e9:.3f} GFLOP/iteration, {rec['flop_per_s'] / 1e9:.1f} GFLOP/s"
        + share)
