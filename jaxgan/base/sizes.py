"""Image sizes: one side (a square image) or a height and a width.

`config.data.image_size`, `prepare --size` and a prepared dataset's manifest all say an
image's size the same way: `28` (28x28), or `(32, 64)` / `"32,64"` (32 high, 64 wide).
Every reader turns it into (height, width) with `hw` and writes it back with `text` /
`canonical`, so a square size keeps its old form (an int) in manifests and run configs, and
runs and datasets written before non-square sizes existed read unchanged.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

LO, HI = 4, 4096     # each side, in pixels
NOT_A_SIZE = "is not a size: write one side (28) or height,width (32,64)"
HW = Tuple[int, int]
_TEXT = re.compile(r"\s*(\d+)\s*(?:[,xX]\s*(\d+)\s*)?")   # '28', '32,64', '32x64'


def hw(value) -> HW:
  """(height, width) of `value`: an int, 'H,W' / 'HxW', or a pair. Raises ValueError."""
  if isinstance(value, str):
    m = _TEXT.fullmatch(value)
    if m is None:
      raise ValueError(f"{value!r} {NOT_A_SIZE}")
    value = int(m[1]) if m[2] is None else (int(m[1]), int(m[2]))
  if isinstance(value, bool):
    raise ValueError(f"{value!r} {NOT_A_SIZE}")
  if isinstance(value, int):
    return value, value
  if isinstance(value, (tuple, list)) and len(value) == 2 and all(
      isinstance(v, int) and not isinstance(v, bool) for v in value):
    return int(value[0]), int(value[1])
  raise ValueError(f"{value!r} {NOT_A_SIZE}")


def problem(value) -> Optional[str]:
  """The config rule: why `value` is not a valid image size, or None."""
  try:
    h, w = hw(value)
  except ValueError:
    return NOT_A_SIZE
  if not (LO <= h <= HI and LO <= w <= HI):
    return f"must have each side in [{LO}, {HI}] pixels"
  return None


def text(value) -> str:
  """'28' for a square size, '32,64' otherwise (what `prepare --size` takes)."""
  h, w = hw(value)
  return str(h) if h == w else f"{h},{w}"


def times(value) -> str:
  """'28x28' / '32x64', for messages."""
  h, w = hw(value)
  return f"{h}x{w}"


def canonical(value):
  """As a config holds it and a manifest stores it (JSON writes the pair as [h, w]): an int
  when square, else (h, w); so that '32,64', [32, 64] and (32, 64) are one value (a run
  resumed with another spelling is the same run)."""
  h, w = hw(value)
  return h if h == w else (h, w)
