"""Many train steps per compiled call (`config.train.steps_per_call = K`).

On an accelerator a small GAN's step is microseconds of work, so launching one program
per step with a host-built batch leaves the device idle between steps. With K > 1 the
loop calls one program that runs K steps, with the K steps' batches transferred together
([K, n_critic, B, ...]); the metrics come back stacked on a leading K axis.

Two forms of the same K steps (`config.train.call_loop`):
  scan    a `lax.scan` over the K batches: one traced step, compiled once, whatever K is;
          lazy regularizers use the step's lax.cond form (the same numbers).
  unroll  the K steps written out one after another: XLA:CPU runs convolutions inside a
          loop body several times slower than straight-line code (PERF_NOTES.md), so on
          CPU this is the fast form; each step keeps its own static lazy pattern.
  auto    unroll on CPU, scan elsewhere (`python -m jaxgan.bench --steps_per_call K`
          measures both).

Calls end at multiples of K (the first call after a resume may be shorter), so logging,
grids, evaluation and checkpoints, whose intervals must be multiples of K, fall on call
boundaries, and a run resumes at any checkpoint with any K. Every step is the same
function of (state, batch) as with K = 1, fenced by optimization barriers; the results
equal K = 1 to float32 rounding (tests/test_multistep.py; on XLA:CPU a few weights still
differ in the last bit, so bit-identity, which issue 22 asks for, is not reached yet).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.errors import UserError

# The intervals that must fall on call boundaries.
INTERVALS = ("train.log_every", "train.checkpoint_every", "train.sample_every", "eval.every")


def check(config) -> None:
  """Refuses intervals that a call of K steps would step over."""
  k = int(config.train.get("steps_per_call", 1))
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
  loop = config.train.get("call_loop", "auto")
  if loop == "auto":
    return "unroll" if jax.default_backend() == "cpu" else "scan"
  return loop


def call_size(step: int, per_call: int, total: int) -> int:
  """Steps in the call starting at `step`: up to the next multiple of `per_call`."""
  return min(per_call - step % per_call, total - step)


def chain(steps: Sequence[Callable], scan: bool) -> Callable:
  """One function (state, batches) -> (state, stacked metrics) running the given step
  functions, each (state, batch) -> (state, metrics), on batches[0], batches[1], ...
  With `scan` all steps must be the same function (steps[0] is used for every batch)."""
  def fenced(fn):
    # optimization_barrier on what enters and leaves a step: XLA may not fuse or
    # reassociate across step boundaries, so each step's ops are those of a call of its
    # own. (The results still differ from one step per call in the last bit of a few
    # weights on XLA:CPU, also when K = 1 is fenced the same way: the difference lies
    # inside a step's compilation, not across steps.)
    def step(state, batch):
      state, batch = lax.optimization_barrier((state, batch))
      return lax.optimization_barrier(fn(state, batch))
    return step
  if scan:
    return lambda state, batches: lax.scan(fenced(steps[0]), state, batches)

  def run(state, batches):
    metrics = []
    for i, fn in enumerate(steps):
      state, m = fenced(fn)(state, jax.tree.map(lambda b, i=i: b[i], batches))
      metrics.append(m)
    return state, jax.tree.map(lambda *v: jnp.stack(v), *metrics)
  return run
