"""When a training invocation stops before train.steps: a SIGTERM/SIGINT (saved at the next
step boundary, then the process exits with the preemption code), the train.max_seconds
budget (evaluation time excluded), and, with several processes, agreeing on the step.
"""
from __future__ import annotations

import signal
import time

import jax
import numpy as np


def agreed(flag: bool, step: int, every: int) -> bool:
  """Whether to stop after `step`. One process: as soon as `flag` is set. Several: all
  processes must stop at the same step, so they agree every `every` steps."""
  if jax.process_count() == 1:
    return flag
  if step % every:
    return False
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  flags = multihost_utils.process_allgather(np.array(flag))
  return bool(np.any(flags))


clock = time.perf_counter   # a name the tests can replace


class Budget:
  """`train.max_seconds` of training in this invocation (0: none); the time the actions
  spend evaluating (loop.eval_seconds) does not count."""

  def __init__(self, seconds: float):
    self.seconds, self.t0 = float(seconds), clock()

  def spent(self, loop) -> bool:
    return bool(self.seconds) and clock() - self.t0 - loop.eval_seconds >= self.seconds


class Preemption:
  """Turns SIGTERM/SIGINT into a flag checked at step boundaries."""

  def __init__(self):
    self.signal = None
    self.repeats = 0
    self._old = {}

  def __enter__(self):
    for s in (signal.SIGTERM, signal.SIGINT):
      try:
        self._old[s] = signal.signal(s, self._handle)
      except ValueError:  # not the main thread
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal is not None and signum == signal.SIGINT:
      self.repeats += 1
      if self.repeats >= 2:
        raise KeyboardInterrupt  # a third Ctrl-C gives up on the save
      print("Stopping: saving a checkpoint first (Ctrl-C once more aborts without saving).",
            flush=True)
      return
    self.signal = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)
