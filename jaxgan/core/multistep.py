"""Many train steps per compiled call (`config.train.steps_per_call = K`).

On an accelerator a small GAN's step is microseconds of work, so launching one program
per step with a host-built batch leaves the device idle between steps. With K > 1 the
loop calls one program that runs K steps, with the K steps' batches transferred together
([K, n_critic, B, ...]); the metrics come back stacked on a leading K axis.

Two forms of the same K steps (`config.train.call_loop`):
  scan    a `lax.scan` over the K batches: one traced step, compiled once whatever K is.
          With lazy regularizers each step picks its pattern's program by a lax.switch
          (`scan_switch`).
  unroll  the K steps written out one after another, each fenced by optimization
          barriers. Each step keeps its own static lazy pattern.
  auto    scan on every platform. `python -m benchmarks.bench --steps_per_call K
          --call_loop unroll|scan` measures both.
Both equal K calls of one step to float32 rounding, not bit for bit: XLA compiles a step
inside the call in another context than a step alone and may fuse and round a reduction
differently in the last bit (seen with jax 0.12.1 on AVX-512 and AVX2-only CPUs, and with
0.10.2 on AVX2). A run resumed at a multiple of K with the same K runs the very programs
of the uninterrupted run and is bit-identical to it (tests/test_multistep.py).

Calls end at multiples of K (the first call after a resume may be shorter), so logging,
grids, evaluation and checkpoints, whose intervals must be multiples of K, fall on call
boundaries, and a run resumes at any checkpoint with any K.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.base.errors import UserError

# The intervals that must fall on call boundaries.
INTERVALS = ("train.log_every", "train.checkpoint_every", "train.sample_every", "eval.every")


def check(config) -> None:
  """Refuses intervals that a call of K steps would step over."""
  k = int(config.train.steps_per_call)
  if k == 1:
    return
  for name in INTERVALS:
    section, field = name.split(".")
    every = int(config[section][field])
    if every % k:
      raise UserError(
          f"config.{name}={every} is not a multiple of config.train.steps_per_call={k}; "
          f"logging, grids, evaluation and checkpoints happen between calls: make it a "
          f"multiple of {k} (e.g. {max(k, every // k * k)}) or lower steps_per_call.")


def resolved_loop(config) -> str:
  loop = config.train.call_loop
  return "scan" if loop == "auto" else loop


def call_size(step: int, per_call: int, total: int) -> int:
  """Steps in the call starting at `step`: up to the next multiple of `per_call`."""
  return min(per_call - step % per_call, total - step)


def _fenced(fn):
  """fn with optimization barriers on what enters and leaves it: XLA may not fuse or
  reassociate across step boundaries."""
  def step(state, batch):
    state, batch = lax.optimization_barrier((state, batch))
    return lax.optimization_barrier(fn(state, batch))
  return step


def scan_switch(programs: Sequence[Callable]) -> Callable:
  """(state, batches, which) -> (state, stacked metrics): a lax.scan over the K batches
  whose step i runs programs[which[i]], each (state, batch) -> (state, metrics) for one
  pattern of lazy regularizers (a lax.switch picks it: one traced body whatever the
  patterns' order)."""
  programs = [_fenced(p) for p in programs]

  def body(state, xs):
    batch, i = xs
    if len(programs) == 1:
      return programs[0](state, batch)
    return lax.switch(i, programs, state, batch)
  return lambda state, batches, which: lax.scan(body, state, (batches, which))


def chain(steps: Sequence[Callable], scan: bool) -> Callable:
  """One function (state, batches) -> (state, stacked metrics) running the given step
  functions, each (state, batch) -> (state, metrics), on batches[0], batches[1], ...
  With `scan` all steps must be the same function (steps[0] is used for every batch)."""
  if scan:
    return lambda state, batches: lax.scan(_fenced(steps[0]), state, batches)

  def run(state, batches):
    metrics = []
    for i, fn in enumerate(steps):
      state, m = _fenced(fn)(state, jax.tree.map(lambda b, i=i: b[i], batches))
      metrics.append(m)
    return state, jax.tree.map(lambda *v: jnp.stack(v), *metrics)
  return run
