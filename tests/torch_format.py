"""Writes `torch.save` files without PyTorch, for tests of jaxgan's weights reader.

Both formats of torch/serialization.py: the zip archive (`archive/data.pkl` whose
persistent ids name raw little-endian storages under `archive/data/`) and the legacy
stream (magic number, protocol 1001, system info, the object, the sorted storage keys,
then each storage as an int64 element count and its bytes). Tensors are pickled as
PyTorch does, a call of `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks)`; the reader must recognise those names without importing torch.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
           np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
           np.dtype(np.int32): "IntStorage", np.dtype(np.uint8): "ByteStorage"}


class Ref:
  """A module-level name written as a GLOBAL opcode without importing it."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):  # pickle's save_reduce wants a callable; never called
    raise TypeError(f"{self.module}.{self.name} is only a name here")


class Storage:

  def __init__(self, key, array):
    self.key, self.array = key, np.ascontiguousarray(array).reshape(-1)


class Tensor:
  """A view of `storage`: offset and strides in elements, as torch records them."""

  def __init__(self, storage, offset, shape, strides):
    self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides


def _save_ref(pickler, obj):
  pickler.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
  pickler.memoize(obj)


class _Pickler(pickle._Pickler):  # the Python pickler: its dispatch table can be extended
  dispatch = dict(pickle._Pickler.dispatch)
  dispatch[Ref] = _save_ref

  def __init__(self, f, legacy: bool):
    super().__init__(f, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    if isinstance(obj, Storage):
      kind = Ref("torch", STORAGE[obj.array.dtype])
      pid = ("storage", kind, obj.key, "cpu", obj.array.size)
      return pid + (None,) if self.legacy else pid
    return None

  def reducer_override(self, obj):
    if isinstance(obj, Tensor):
      return (Ref("torch._utils", "_rebuild_tensor_v2"),
              (obj.storage, obj.offset, tuple(obj.shape), tuple(obj.strides), False,
               collections.OrderedDict()))
    return NotImplemented


def tensors(state: dict):
  """{name: array} -> ({name: Tensor}, storages): one storage per array, C strides."""
  out, storages = collections.OrderedDict(), []
  for i, (k, v) in enumerate(state.items()):
    if isinstance(v, Tensor):
      out[k] = v
      continue
    v = np.asarray(v)
    s = Storage(str(i), v)
    storages.append(s)
    strides = [int(np.prod(v.shape[j + 1:])) for j in range(v.ndim)]
    out[k] = Tensor(s, 0, v.shape, strides)
  return out, storages


def _pickle(obj, legacy: bool) -> bytes:
  buf = io.BytesIO()
  _Pickler(buf, legacy).dump(obj)
  return buf.getvalue()


def save_zip(obj, storages, path: str):
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", _pickle(obj, legacy=False))
    z.writestr("archive/byteorder", "little")
    for s in storages:
      z.writestr(f"archive/data/{s.key}", s.array.astype(s.array.dtype.newbyteorder("<"))
                 .tobytes())
    z.writestr("archive/version", "3\n")


def save_legacy(obj, storages, path: str):
  with open(path, "wb") as f:
    for header in (0x1950a86a20f9469cfc6c, 1001,
                   {"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
      pickle.dump(header, f, protocol=2)
    f.write(_pickle(obj, legacy=True))
    keys = sorted(s.key for s in storages)
    pickle.dump(keys, f, protocol=2)
    by_key = {s.key: s for s in storages}
    for k in keys:
      a = by_key[k].array
      f.write(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes())


def save(state: dict, path: str, legacy: bool = False):
  obj, storages = tensors(state)
  (save_legacy if legacy else save_zip)(obj, storages, path)


def malicious_pickle(command: str) -> bytes:
  """A pickle that runs `command` through os.system when loaded with plain pickle."""
  return (pickle.PROTO + b"\x02" + pickle.GLOBAL + b"os\nsystem\n" + pickle.BINUNICODE
          + struct.pack("<I", len(command)) + command.encode() + pickle.TUPLE1
          + pickle.REDUCE + pickle.STOP)


def random_inception_state(seed=0):
  """A random state dict with pytorch-fid's names and PyTorch layouts (He-scaled convs)."""
  rs = np.random.RandomState(seed)
  bn = {"scale": ("weight", lambda n: rs.rand(n) + 0.5),
        "bias": ("bias", lambda n: 0.1 * rs.randn(n)),
        "mean": ("running_mean", lambda n: 0.1 * rs.randn(n)),
        "var": ("running_var", lambda n: rs.rand(n) + 0.5)}
  sd = {}
  from jaxgan.eval import inception  # pylint: disable=g-import-not-at-top
  for path, var in inception.variables(inception.abstract_model()):
    shape = var.get_value().shape
    if path == "fc/kernel":
      sd["fc.weight"] = rs.randn(shape[1], shape[0]) / np.sqrt(shape[0])
    elif path == "fc/bias":
      sd["fc.bias"] = 0.1 * rs.randn(*shape)
    else:
      module, layer, leaf = path.rsplit("/", 2)   # "Mixed_5b/branch1x1", "conv", "kernel"
      prefix = module.replace("/", ".")
      if layer == "conv":
        fan_in = np.prod(shape[:3])
        sd[f"{prefix}.conv.weight"] = (rs.randn(shape[3], shape[2], *shape[:2])
                                       * np.sqrt(2.0 / fan_in))
        sd[f"{prefix}.bn.num_batches_tracked"] = np.asarray(100, np.int64)
      else:
        name, draw = bn[leaf]
        sd[f"{prefix}.bn.{name}"] = draw(shape[0])
  return {k: v if v.dtype == np.int64 else v.astype(np.float32) for k, v in sd.items()}
