"""A tiny name -> object registry so configs can pick components by string.

Every swappable piece of jaxgan (losses, penalties, architectures, optimizers, data
sources) is registered under a stable name; an unknown name is an error that lists the
valid ones, so a typo in `--config.loss=...` fails at start-up, not after compilation.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Dict, Generic, Iterator, TypeVar

from jaxgan.base.errors import UserError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
  """Maps config strings to objects of one kind (e.g. "loss")."""

  def __init__(self, kind: str, config_field: str = ""):
    self.kind = kind
    self.config_field = config_field
    self._items: Dict[str, T] = {}

  def register(self, name: str, obj: T | None = None):
    """Registers `obj` under `name`; usable as a decorator when `obj` is omitted."""
    def _add(o: T) -> T:
      if name in self._items:
        raise ValueError(f"{self.kind} {name!r} is already registered")
      self._items[name] = o
      return o
    return _add(obj) if obj is not None else _add

  def get(self, name: str) -> T:
    try:
      return self._items[name]
    except KeyError:
      where = f" (set by {self.config_field})" if self.config_field else ""
      raise UserError(
          f"Unknown {self.kind} {name!r}{where}.{did_you_mean(str(name), self._items)} "
          f"Valid {self.kind} names: {', '.join(sorted(self._items))}.") from None

  def names(self) -> list[str]:
    return sorted(self._items)

  def __contains__(self, name: str) -> bool:
    return name in self._items

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())


def import_all(package_name: str, package_path) -> None:
  """Imports every module of a package, so a new file there registers itself: adding a
  regularizer, an augmentation, an architecture or a metric is one new file."""
  for info in pkgutil.iter_modules(package_path):
    if not info.name.startswith("_"):
      importlib.import_module(f"{package_name}.{info.name}")
