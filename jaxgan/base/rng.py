"""Named, counter-based random streams.

One root key comes from `config.seed`. Every random draw in a run is derived from it by
`fold_in` with the step number and a stream name (and, where needed, an index such as
the critic iteration). Nothing depends on how many devices or processes run the job, or
on how many draws happened before: batch/step s can be reproduced in isolation.
"""
from __future__ import annotations

import zlib

import jax


def stream_id(name: str) -> int:
  """A stable 31-bit integer for a stream name (crc32, not Python's salted hash)."""
  return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def root_key(seed: int) -> jax.Array:
  """The run's root key (raw uint32[2] data, so it checkpoints as a plain array)."""
  return jax.random.PRNGKey(seed)


def stream(key: jax.Array, name: str, *indices) -> jax.Array:
  """The key of stream `name` (optionally sub-indexed) below `key`."""
  key = jax.random.fold_in(key, stream_id(name))
  for i in indices:
    key = jax.random.fold_in(key, i)
  return key


def step_key(root: jax.Array, step) -> jax.Array:
  """The key every draw of generator step `step` derives from."""
  return jax.random.fold_in(stream(root, "train"), step)
