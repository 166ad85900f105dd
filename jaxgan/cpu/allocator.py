"""Process-level settings that make XLA:CPU faster, applied by launch.py and the benchmark.

XLA:CPU allocates a fresh output buffer for every large intermediate of every step and
frees it afterwards. glibc serves allocations above its mmap threshold with mmap and
returns them with munmap, so every step page-faults all of its activations in again: on
this 2-core machine `x + 1` on a 33 MB array took 13.9 ms that way against 2.2 ms once the
memory is kept (a 6x difference, and the bulk of an elementwise-heavy GAN step). Keeping
freed memory in the process (as TensorFlow's and PyTorch's caching allocators do) is
what `tune_host_allocator` does, through glibc's `mallopt`: no mmap'd chunks and no
trimming. (Limiting glibc to one arena as well made the small-array mlp_gan step slower
and was within noise for dcgan64, so it is not done.) The process's RSS then stays at its
peak instead of shrinking between steps. Compare with `JAXGAN_TUNE_MALLOC=0 python -m benchmarks.bench`.
Set JAXGAN_TUNE_MALLOC=0 to leave the allocator alone. GPU/TPU device memory is unaffected.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_applied = None


def tune_host_allocator() -> bool:
  """Keeps freed host memory in the process (glibc only; idempotent). True when applied."""
  global _applied
  if _applied is not None:
    return _applied
  _applied = False
  if os.environ.get("JAXGAN_TUNE_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
    return False
  mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
  _applied = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
  return _applied
