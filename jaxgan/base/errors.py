"""Mistakes a user can fix, and how a run ends.

`UserError` is the one family for them: a bad config value, a missing or damaged file, a
workdir in use. `launch.py` prints it as one line (`error: ...`: what is wrong, naming the
field or file and the value, then the fix) and exits with `EXIT_USAGE`, without a
traceback (`--debug` shows it). Anything else is a bug and keeps its traceback. It
subclasses ValueError so code that catches ValueError keeps working.

A run stopped by SIGTERM/SIGINT saves a checkpoint and exits with `EXIT_PREEMPTED` (75,
EX_TEMPFAIL: "try again later"), so a scheduler restarts it (SLURM `--requeue`, a
Kubernetes Job with restartPolicy OnFailure); a run that finished exits 0.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

EXIT_USAGE = 2
EXIT_PREEMPTED = 75


class UserError(ValueError):
  """A mistake the user can fix; the message says what and how."""


class UserFileError(UserError, FileNotFoundError):
  """A file or directory the user named is missing (also a FileNotFoundError)."""


class NonFiniteError(FloatingPointError):
  """Training diverged (a non-finite loss or parameter); the message names the step.

  Raised before the bad state can reach a checkpoint; launch.py prints it on one line and
  exits 1 (the run failed, but the code and the config were fine)."""


class Preempted(Exception):
  """The run saved a checkpoint after a signal and should exit with EXIT_PREEMPTED."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"stopped by signal {signum} at step {step} after saving a checkpoint")
    self.signum, self.step = signum, step


def nearest(name: str, valid: Iterable[str]) -> Optional[str]:
  """The valid name closest to a misspelt one, or None."""
  match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
  return match[0] if match else None


def short_reason(error: Exception, limit: int = 160) -> str:
  """`Type: first line` of an exception, cut to `limit` characters (a library's message
  can embed kilobytes of specification that would bury the fix after it)."""
  text = str(error).splitlines()[0] if str(error) else ""
  if len(text) > limit:
    text = text[:limit] + "..."
  return f"{type(error).__name__}: {text}"


def did_you_mean(name: str, valid: Iterable[str]) -> str:
  guess = nearest(name, valid)
  return f" Did you mean {guess!r}?" if guess else ""
