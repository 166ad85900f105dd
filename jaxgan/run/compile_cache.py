"""JAX's persistent compilation cache, on by default (`config.train.compile_cache`).

Why: a GAN step is one large XLA program; compiling it takes seconds on a CPU and up to
minutes for a ResNet under K steps per call or bfloat16, and every process used to pay
that again: a resumed run, the second seed of a sweep, `--mode sample/eval`. JAX can keep
compiled executables on disk keyed by the program, the backend and the jax/jaxlib
versions (https://docs.jax.dev/en/latest/persistent_compilation_cache.html); a second
process then loads the executable instead of compiling it. A cached executable is the
very program a compile would give, so results do not change.

Where: "auto" is <JAXGAN_CACHE_DIR or ~/.cache/jaxgan>/xla (beside the oneDNN build and
the evaluation caches), a path puts it there, "off" (or the environment variable
JAXGAN_COMPILE_CACHE=off) turns it off. Only programs that took at least
MIN_COMPILE_SECONDS to compile are written, so the tiny helper programs do not fill the
disk. The setting is process-wide (it is JAX's): launch.py applies the run's before
anything compiles, and `enable` may be called again with another directory.
"""
from __future__ import annotations

import os
import time
from typing import Optional

import jax

from jaxgan.base import paths
from jaxgan.base.errors import UserError

MIN_COMPILE_SECONDS = 0.5
_OFF = ("off", "none", "false", "0", "")
_hits = [0]
_listening = [False]
_current = [None]


def resolve(setting: str) -> Optional[str]:
  """The directory for a config value ("auto", "off" or a path), or None when off."""
  if os.environ.get("JAXGAN_COMPILE_CACHE", "").strip().lower() in _OFF[:-1]:
    return None
  setting = str(setting).strip()
  if setting.lower() in _OFF:
    return None
  if setting.lower() == "auto":
    return os.path.join(paths.cache_root(), "xla")
  return os.path.abspath(os.path.expanduser(setting))


def enable(setting: str = "auto") -> Optional[str]:
  """Points JAX's persistent cache at `setting`'s directory (or turns it off); returns the
  directory in use. Idempotent; a new directory takes effect for the next compile."""
  path = resolve(setting)
  if path == _current[0]:
    return path
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  if path is None:
    jax.config.update("jax_enable_compilation_cache", False)
  else:
    try:
      os.makedirs(path, exist_ok=True)
    except OSError as e:
      raise UserError(f"config.train.compile_cache={setting!r}: cannot create {path!r} "
                      f"({e.strerror}); give a writable directory, or 'off'.") from None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
  compilation_cache.reset_cache()   # re-read the settings at the next compile
  _current[0] = path
  _listen()
  return path


def current() -> Optional[str]:
  """The directory in use, or None when the cache is off."""
  return _current[0]


def _listen():
  if not _listening[0]:
    _listening[0] = True
    jax.monitoring.register_event_listener(
        lambda event, **kw: _hits.__setitem__(0, _hits[0] + 1)
        if event == "/jax/compilation_cache/cache_hits" else None)


class Timer:
  """Times a compile and tells whether the persistent cache served it."""

  def __enter__(self):
    self._t0, self._hits0 = time.perf_counter(), _hits[0]
    return self

  def __exit__(self, *exc):
    self.seconds = time.perf_counter() - self._t0
    self.from_cache = _hits[0] > self._hits0
    return False

  def note(self) -> str:
    if self.from_cache:
      return "; XLA's part loaded from the compilation cache"
    return "" if _current[0] is None else f"; compilation cache: {_current[0]}"
