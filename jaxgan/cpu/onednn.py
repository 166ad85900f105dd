"""oneDNN convolutions for XLA:CPU, as an XLA FFI custom call (`onednn_conv.cc`).

Why: on the 2-core AVX-512 CPU of our machines, XLA:CPU's own convolution kernels were
~70% of a DCGAN step, and oneDNN's (the ones TensorFlow and PyTorch use on x86) run the
convolutions of the dcgan64 step 1.7-1.9x faster timed one by one (all of them: 1.0-1.1 s
against 1.9 s per step; `python -m benchmarks.bench --convs --model dcgan64` prints each).
`jaxgan.ops.convs` routes CPU float32 convolutions here when `config.train.cpu_conv`
allows it; GPUs and TPUs never see it.

How: the C++ source is compiled once per machine with the system C++ compiler against the
oneDNN wheel in requirements.txt (`onednn-cpu-gomp` + headers from `onednn-devel-cpu-gomp`)
and XLA's FFI headers shipped in jaxlib, into `$JAXGAN_CACHE_DIR` (default
~/.cache/jaxgan/native/<hash of source and versions>/). The build is atomic (a temporary
file renamed into place), so concurrent processes are safe. When anything is missing (no
compiler, not x86-64 Linux, no oneDNN wheel) `available()` is False with the reason, and
convolutions stay on XLA with a single warning.

GNU OpenMP's worker threads spin for a while after each parallel region, which can steal
the cores from XLA's own threads between convolutions; `load()` sets
OMP_WAIT_POLICY=PASSIVE unless the user has set it (on the 2-core machine, passive and
active measured within noise of each other; passive never burns idle cores).
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from jaxgan.base import paths

TARGET = "jaxgan_onednn_conv"
_SOURCE = Path(__file__).with_name("onednn_conv.cc")
_LIB_DIST, _DEV_DIST = "onednn-cpu-gomp", "onednn-devel-cpu-gomp"
_lock = threading.Lock()
_state: dict = {}


def _dist_path(dist: str, suffix: str) -> Path | None:
  try:
    d = importlib.metadata.distribution(dist)
  except importlib.metadata.PackageNotFoundError:
    return None
  for f in d.files or ():
    if str(f).replace("\\", "/").endswith(suffix):
      return Path(d.locate_file(f)).resolve()
  return None


def _cache_dir() -> Path:
  return Path(paths.cache_root()) / "native"


def _build() -> Path:
  """Compiles onednn_conv.cc (once per source/version combination); returns the .so path."""
  if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
    raise RuntimeError(f"oneDNN convolutions are built for x86-64 Linux only "
                       f"(this is {sys.platform}/{platform.machine()})")
  lib = _dist_path(_LIB_DIST, "/libdnnl.so.3") or _dist_path(_LIB_DIST, "/libdnnl.so")
  header = _dist_path(_DEV_DIST, "/oneapi/dnnl/dnnl.hpp")
  if lib is None or header is None:
    raise RuntimeError(f"the oneDNN wheels are not installed (pip install {_LIB_DIST} "
                       f"{_DEV_DIST}; both are in requirements.txt)")
  cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
  if cxx is None:
    raise RuntimeError("no C++ compiler found (install g++, e.g. apt-get install g++, or set CXX)")
  import jax  # pylint: disable=g-import-not-at-top
  import jax.ffi  # pylint: disable=g-import-not-at-top
  include_ffi = jax.ffi.include_dir()
  include_dnnl = header.parent.parent.parent  # <include>/oneapi/dnnl/dnnl.hpp
  digest = hashlib.sha256()
  for part in (_SOURCE.read_bytes(), jax.__version__.encode(), str(lib).encode(),
               importlib.metadata.version(_LIB_DIST).encode(), cxx.encode()):
    digest.update(part)
  out_dir = _cache_dir() / digest.hexdigest()[:16]
  so = out_dir / "libjaxgan_onednn.so"
  if so.exists():
    return so
  out_dir.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
  os.close(fd)
  cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{include_ffi}",
         f"-I{include_dnnl}", str(_SOURCE), str(lib), f"-Wl,-rpath,{lib.parent}", "-o", tmp]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    os.unlink(tmp)
    raise RuntimeError(f"building the oneDNN convolution extension failed:\n{' '.join(cmd)}\n"
                       f"{proc.stderr[-3000:]}")
  os.replace(tmp, so)  # atomic: a concurrent process sees either nothing or the whole file
  return so


def load():
  """Builds (if needed) and loads the extension and registers the FFI target. Returns the
  ctypes library; raises RuntimeError naming what is missing and how to get it."""
  with _lock:
    if "lib" in _state:
      return _state["lib"]
    if "error" in _state:
      raise RuntimeError(_state["error"])
    try:
      so = _build()
      os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when libgomp starts
      lib = ctypes.CDLL(str(so))
      import jax  # pylint: disable=g-import-not-at-top
      import jax.ffi  # pylint: disable=g-import-not-at-top
      jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.JaxganConv), platform="cpu")
    except (RuntimeError, OSError) as e:
      _state["error"] = str(e)
      raise RuntimeError(_state["error"]) from e
    _state["lib"] = lib
    return lib


def available() -> tuple[bool, str]:
  """(True, path) when the oneDNN convolutions can be used, else (False, reason)."""
  try:
    lib = load()
  except RuntimeError as e:
    return False, str(e)
  return True, lib._name  # pylint: disable=protected-access


def impl_name(kind: int, x_nhwc, w_hwio, y_nhwc, stride, padding) -> str:
  """The oneDNN implementation chosen for one convolution map (e.g. 'jit:avx512_core')."""
  lib = load()
  arr = lambda v: (ctypes.c_int64 * 4)(*[int(d) for d in v])
  (pt, pb), (pl, pr) = padding
  buf = ctypes.create_string_buffer(256)
  args = [ctypes.c_int64(int(v)) for v in (stride[0], stride[1], pt, pb, pl, pr)]
  rc = lib.jaxgan_conv_impl_name(ctypes.c_int64(kind), arr(x_nhwc), arr(w_hwio), arr(y_nhwc),
                                 *args, buf, ctypes.c_int64(256))
  if rc != 0:
    raise ValueError(f"oneDNN rejected the convolution: {buf.value.decode()}")
  return buf.value.decode()
