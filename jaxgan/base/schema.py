"""The types of the config schema: a `Field` (default, meaning, policies, rule) and its
rules (`Range`, `OneOf`). They live at the bottom of the package so that a part declaring
its own config fields (an architecture's `config.model.<arch>` block, jaxgan/core/models)
need not import the schema that collects them (jaxgan/config.py), which imports it."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, List, Optional

from jaxgan.base.errors import did_you_mean


@dataclasses.dataclass(frozen=True)
class Range:
  """lo <= value <= hi (or strict with lo_open / hi_open); None = unbounded."""
  lo: Optional[float] = None
  hi: Optional[float] = None
  lo_open: bool = False
  hi_open: bool = False

  def problem(self, v) -> Optional[str]:
    if not math.isfinite(v):
      return "must be a finite number"
    if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
      return f"must be {self.text()}"
    if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
      return f"must be {self.text()}"
    return None

  def text(self) -> str:
    lo = None if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo:g}"
    hi = None if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi:g}"
    return " and ".join(x for x in (lo, hi) if x)


@dataclasses.dataclass(frozen=True)
class OneOf:
  """One of the names (a tuple, or a function returning a registry's names); with
  `several`, a comma-separated list of them ('' allowed)."""
  names: Any
  several: bool = False

  def valid(self) -> List[str]:
    return list(self.names() if callable(self.names) else self.names)

  def problem(self, v) -> Optional[str]:
    valid = self.valid()
    names = [n.strip() for n in v.split(",") if n.strip()] if self.several else [v]
    for name in names:
      if name not in valid:
        text = [str(x) for x in valid]
        what = f"has unknown name {name!r}" if self.several else "is not valid"
        return f"{what}.{did_you_mean(str(name), text)} Valid: {', '.join(text)}"
    return None

  def text(self) -> str:
    return ("comma-separated of: " if self.several else "one of: ") + ", ".join(
        str(x) for x in self.valid())


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: default value, one-line meaning, valid values and policies. The
  type is the default's (an int field takes integers, a tuple field a tuple), unless the
  field is `literal`."""
  default: Any
  doc: str
  resume: bool = False      # may change when a run resumes
  population: bool = False  # may differ between members of a population
  rule: Any = None          # Range | OneOf | a function value -> problem text or None
  # Any Python literal its rule accepts (an int or a pair): ml_collections types the field
  # `object`, so `--config.F=32,64` parses as (32, 64) and a config file may assign either.
  literal: bool = False


def get_field(config, dotted: str):
  """config["a"]["b"] for "a.b"."""
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node
