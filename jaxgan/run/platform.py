"""The platform's speed-ups for a run's programs, chosen in one place.

Why here: the core (jaxgan/core) is plain JAX and runs the same on every platform; what
is faster on one platform only lives in its own corner (jaxgan/cpu for XLA:CPU) and is
offered to the core through a hook, the convolution provider of
jaxgan/ops/convs.py. This module is the only one that looks at the platform and
imports that corner, so a GPU/TPU process never loads it, and it installs the provider
for a scope (`speedups`), never process-wide.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import jax

from jaxgan.ops import convs


def conv_provider(cpu_conv: str) -> Optional[convs.ConvProvider]:
  """The convolution provider for `config.train.cpu_conv` on this process's default
  backend: oneDNN on CPU ("auto" when it builds, "onednn" always), else None (XLA)."""
  if cpu_conv == "xla" or jax.default_backend() != "cpu":
    return None
  from jaxgan.cpu import conv_provider as cpu_provider  # pylint: disable=g-import-not-at-top
  return cpu_provider.make(cpu_conv)


@contextlib.contextmanager
def speedups(cpu_conv: str):
  """Programs traced inside use the platform's speed-ups (yields the provider, or None)."""
  with convs.provided_by(conv_provider(cpu_conv)) as provider:
    yield provider


def tune_host_allocator() -> bool:
  """glibc's allocator kept for reuse on CPU (jaxgan/cpu/allocator.py); on GPU/TPU the
  host does little allocating and nothing is changed. Call after jax.distributed is
  initialised (this reads the default backend)."""
  if jax.default_backend() != "cpu":
    return False
  from jaxgan.cpu import allocator  # pylint: disable=g-import-not-at-top
  return allocator.tune_host_allocator()
