"""Where jaxgan keeps what it builds once per machine: the oneDNN extension
(jaxgan/cpu/onednn.py) and compiled XLA programs (jaxgan/run/compile_cache.py) share one
root, so `JAXGAN_CACHE_DIR` moves both."""
from __future__ import annotations

import os


def cache_root() -> str:
  """$JAXGAN_CACHE_DIR, else <$XDG_CACHE_HOME or ~/.cache>/jaxgan."""
  return os.environ.get("JAXGAN_CACHE_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxgan")
