"""A pytree leaf's key path as one string, 'g/params/hidden/0/kernel/value': the name
Orbax gives the leaf in a checkpoint, so the layers a fine-tuned run compares
(jaxgan/run/init_from.py) and the blocks Freeze-D masks (jaxgan/core/models) are named as
a checkpoint names them, by one function."""
from __future__ import annotations


def part(k) -> str:
  """One key of a path: a dict key, a sequence index or an attribute name (jax's
  DictKey / FlattenedIndexKey, SequenceKey, GetAttrKey each have exactly one of them)."""
  for attr in ("key", "idx", "name"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def name(path) -> str:
  return "/".join(part(k) for k in path)
