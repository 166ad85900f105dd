"""A workdir belongs to one training process at a time.

`lock(workdir)` takes an exclusive advisory lock (fcntl.flock) on `workdir/.lock` and
writes the holder's host, PID and start time into it. A second process that would train
in the same workdir is refused at once, with the holder named. The lock belongs to the
open file, so the kernel releases it when the holder dies, however it dies: the lock of a
dead process is taken over without anyone deleting anything. (On network filesystems
flock is as good as the filesystem's lock support; NFSv4 and Lustre provide it.)
With several processes, process 0 holds it.

`require_run(workdir)` is for modes that only read a workdir: it never creates one.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
from typing import Optional

from jaxgan.base.errors import UserError

LOCK_NAME = ".lock"


class WorkdirLock:
  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_NAME)
    self.fd: Optional[int] = None

  def acquire(self) -> "WorkdirLock":
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = _read(fd)
      os.close(fd)
      raise UserError(
          f"Workdir {os.path.dirname(self.path)!r} is in use by process {holder.get('pid')} "
          f"on host {holder.get('host')!r} (since {holder.get('since')}). Wait for it to "
          "finish or stop it, or use another --workdir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "since": datetime.datetime.now().isoformat(timespec="seconds")
                             }).encode())
    os.fsync(fd)
    self.fd = fd
    return self

  def release(self):
    if self.fd is not None:
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _read(fd: int) -> dict:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return json.loads(os.read(fd, 4096).decode() or "{}")
  except (OSError, ValueError):
    return {}


def prepare(workdir: str) -> str:
  """Creates a training workdir, or says in one line why it cannot be one."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir!r} is a file, not a directory; pass a directory "
                    "path (it is created if missing).")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"--workdir {workdir!r} cannot be created ({e.strerror}); pass a "
                    "directory you can write to.") from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise UserError(f"--workdir {workdir!r} is not writable; pass a directory you can write "
                    "to.")
  return workdir


def require_run(workdir: str) -> str:
  """A workdir that sample/eval/latent/report modes read: it must hold a run."""
  ckpts = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir!r} does not exist; pass the directory of a trained "
                    "run (the --workdir you trained with).")
  if not os.path.isdir(ckpts) and not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    raise UserError(f"--workdir {workdir!r} holds no run (no checkpoints/ or metrics.jsonl); "
                    "train there first with --mode train, or pass the run's directory.")
  return workdir


@contextlib.contextmanager
def lock_for_training(workdir: str):
  """The workdir's lock for the duration of a training job (process 0 holds it)."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0:
    yield None
    return
  with WorkdirLock(workdir) as held:
    yield held
