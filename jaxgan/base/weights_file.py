"""Reading published network weights without running code from the file and without PyTorch.

Inception weights for FID come as pickles: pytorch-fid's `.pth` (a `torch.save` of a state
dict: a zip archive since PyTorch 1.6, a stream of pickles before) and the JAX ports'
`inception_v3_weights_fid.pickle` (nested dicts of NumPy arrays). Unpickling may call any
importable function, so a tampered file could run a command. `SafeUnpickler` builds only
what an allow-list names: containers, NumPy arrays, and PyTorch's tensor and storage
records, which it turns into NumPy arrays itself (the same idea as
`torch.load(weights_only=True)`). Anything else stops with `UnsafeFileError`, naming the
file and the refused callable.

`read_torch(path)` -> {name: np.ndarray} for either `torch.save` format;
`read_pickle(path)` -> the nested dict of arrays of a NumPy pickle.
"""
from __future__ import annotations

import collections
import hashlib
import io
import pickle
import zipfile
from typing import Any, Callable, Dict, Optional

import ml_dtypes
import numpy as np

from jaxgan.base.errors import UserError

try:
  from numpy._core import multiarray as _multiarray
except ImportError:  # NumPy 1
  from numpy.core import multiarray as _multiarray

# PyTorch storage classes -> element type (torch/storage.py's _pickle_storage_type names).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
# Legacy (pre-zip) torch.save: these three pickles precede the object.
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001


def file_sha256(path: str) -> str:
  """The sha256 of a weights file, read in 1 MiB chunks (how runs and latent datasets
  record which weights they used)."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


class UnsafeFileError(UserError):
  """A weights file asked the unpickler for something outside the allow-list."""


class StorageType:
  """Stands in for torch.FloatStorage & co. in a pickle: only its element type matters."""

  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class LazyTensor:
  """A tensor of a legacy file, whose storage bytes come after the pickle."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _tensor(storage: np.ndarray, offset: int, size, stride) -> np.ndarray:
  """torch.as_strided on a flat storage, copied into an ordinary C-contiguous array."""
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  if not size:
    return np.array(storage[offset])
  span = 1 + sum((n - 1) * s for n, s in zip(size, stride))
  if offset + span > storage.size or offset < 0:
    raise ValueError(f"tensor of size {size} at offset {offset} overruns its storage")
  view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                         [s * storage.itemsize for s in stride])
  return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  """torch._utils._rebuild_tensor(_v2): the trailing requires_grad, hooks and metadata do
  not change the values."""
  if isinstance(storage, np.ndarray):
    return _tensor(storage, offset, size, stride)
  return LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


TORCH_GLOBALS: Dict[tuple, Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}
NUMPY_GLOBALS: Dict[tuple, Any] = {
    (mod, name): getattr(_multiarray, name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray")  # NumPy 1 and 2 names
    for name in ("_reconstruct", "scalar")}
NUMPY_GLOBALS.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype})
BASE_GLOBALS: Dict[tuple, Any] = {("collections", "OrderedDict"): collections.OrderedDict,
                                  ("builtins", "set"): set, ("builtins", "frozenset"): frozenset}


class SafeUnpickler(pickle.Unpickler):
  """An Unpickler whose `find_class` serves only `allowed` (module, name) pairs."""

  def __init__(self, file, allowed: Dict[tuple, Any], source: str,
               persistent_load: Optional[Callable] = None):
    super().__init__(file)
    self.allowed, self.source = allowed, source
    if persistent_load is not None:
      self.persistent_load = persistent_load

  def find_class(self, module, name):
    try:
      return self.allowed[(module, name)]
    except KeyError:
      raise UnsafeFileError(
          f"{self.source}: refused to unpickle {module}.{name} (only arrays, containers "
          "and tensors are read from weights files). The file is damaged or not the "
          "published weights; download it again.") from None


def _persistent_storage(load: Callable[[str, np.dtype, int], Any]):
  def persistent_load(pid):
    if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
    kind, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(kind, StorageType):
      raise pickle.UnpicklingError(f"storage of unknown type {kind!r:.80}")
    view = pid[5] if len(pid) > 5 else None
    return load(key, kind.dtype, numel, view)
  return persistent_load


def _read_zip(path: str, f) -> Dict[str, Any]:
  with zipfile.ZipFile(f) as z:
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
    if len(pkl) != 1:
      raise UserError(f"{path}: a zip file without one data.pkl is not a torch.save file.")
    prefix = pkl[0][:-len("data.pkl")]

    def load(key, dtype, numel, view):
      raw = z.read(f"{prefix}data/{key}")
      if len(raw) < numel * dtype.itemsize:
        raise pickle.UnpicklingError(f"storage {key} is shorter than its {numel} elements")
      return np.frombuffer(raw, dtype.newbyteorder("<"), count=numel)
    with z.open(pkl[0]) as p:
      return SafeUnpickler(p, {**BASE_GLOBALS, **TORCH_GLOBALS}, path,
                           _persistent_storage(load)).load()


def _resolve(obj, storages):
  """Replaces the LazyTensors of a legacy file by arrays once the storages are read."""
  if isinstance(obj, LazyTensor):
    key, view = obj.storage
    data = storages[key]
    if view is not None:
      _, start, length = view
      data = data[int(start):int(start) + int(length)]
    return _tensor(data, obj.offset, obj.size, obj.stride)
  if isinstance(obj, dict):
    out = type(obj)((k, _resolve(v, storages)) for k, v in obj.items())
    return out
  if isinstance(obj, (list, tuple)):
    return type(obj)(_resolve(v, storages) for v in obj)
  return obj


def _read_legacy(path: str, f) -> Dict[str, Any]:
  allowed = {**BASE_GLOBALS, **TORCH_GLOBALS}
  header = [SafeUnpickler(f, allowed, path).load() for _ in range(3)]
  if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
    raise UserError(f"{path}: not a torch.save file (no zip archive, no legacy header).")
  if isinstance(header[2], dict) and not header[2].get("little_endian", True):
    raise UserError(f"{path}: a big-endian torch.save file is not supported.")
  dtypes = {}

  def load(key, dtype, numel, view):
    dtypes[key] = dtype
    return (key, view)
  obj = SafeUnpickler(f, allowed, path, _persistent_storage(load)).load()
  keys = SafeUnpickler(f, allowed, path).load()
  storages = {}
  for key in keys:
    key = str(key)
    numel = int(np.frombuffer(f.read(8), "<i8")[0])
    dtype = dtypes[key].newbyteorder("<")
    raw = f.read(numel * dtype.itemsize)
    if len(raw) != numel * dtype.itemsize:
      raise UserError(f"{path}: the file ends inside storage {key}; it is truncated.")
    storages[key] = np.frombuffer(raw, dtype)
  return _resolve(obj, storages)


def _fail(path: str, e: Exception):
  if isinstance(e, UserError):
    raise e
  raise UserError(f"{path}: cannot be read as a weights file ({type(e).__name__}: "
                  f"{str(e)[:120]}); it is damaged or of another format.") from e


def read_torch(path: str) -> Dict[str, np.ndarray]:
  """The state dict of a `torch.save` file (zip or legacy format) as NumPy arrays."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    if zipfile.is_zipfile(io.BytesIO(data)):
      out = _read_zip(path, io.BytesIO(data))
    else:
      out = _read_legacy(path, io.BytesIO(data))
  except Exception as e:  # pylint: disable=broad-except
    _fail(path, e)
  if not isinstance(out, dict):
    raise UserError(f"{path}: holds a {type(out).__name__}, not a state dict.")
  return dict(out)


def read_pickle(path: str) -> Any:
  """A pickle of nested dicts/lists of NumPy arrays (the JAX FID ports' weight files)."""
  with open(path, "rb") as f:
    try:
      return SafeUnpickler(f, {**BASE_GLOBALS, **NUMPY_GLOBALS}, path).load()
    except Exception as e:  # pylint: disable=broad-except
      _fail(path, e)
