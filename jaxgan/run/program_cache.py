"""Traced train programs kept on disk (jax.export), so a second process does not trace.

Why: JAX's persistent compilation cache (compile_cache.py) saves the XLA half of a first
train call, not the half before it: tracing the Python of the step (n_critic unrolled
critic updates, a double backward for a gradient penalty) and lowering it to StableHLO.
For `configs/wgan_gp.py` on the 2-core CPU that half is 1.2 s of a 1.6 s second launch.
jax.export serialises exactly that traced and lowered program (StableHLO with its
shardings, https://docs.jax.dev/en/latest/export/export.html); a later process
deserialises it and compiles it, which JAX's compilation cache then answers.

How: a program is exported over the flattened leaves of its arguments (so no custom
pytree node needs a serialisation rule), with the arguments' shardings, donation and the
convolution provider's custom calls allowed, and written atomically to
<compilation cache>/programs/<digest>.jaxexport beside its output tree (a pickled
PyTreeDef). Every process, the first included, runs the deserialised program, so each
launch runs the same program. The digest covers everything the trace depends on: the
program's key (its lazy regularizers, K steps), the run's configs, the arguments' shapes,
dtypes, shardings and tree, the source of every loaded module outside the Python and
site-packages directories (jaxgan, configs, plugins), the versions of Python, jax, jaxlib,
flax and optax, the devices, JAX's config values, the provider in scope, and the XLA_FLAGS,
JAX_* and JAXGAN_* environment. Anything else that changes gives a new digest: a stale
program is never run. A program that cannot be exported (an unexpected custom call) is
traced the ordinary way, and the run says why once.

On with the compilation cache (`config.train.compile_cache`, JAXGAN_COMPILE_CACHE=off
turns both off), single-process runs only: a multi-host program is traced per process.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import sysconfig
import tempfile
import time
from typing import Callable, Optional, Sequence

import jax

from jaxgan.ops import convs

SUFFIX = ".jaxexport"
VERSION = "1"


def _outside_sources() -> list:
  """The source files of loaded modules outside the stdlib and site-packages, but for
  TensorFlow's autograph output (a fresh temporary file per process for each tf.data
  function, which no JAX program depends on)."""
  skip = tuple(os.path.realpath(p) + os.sep for p in {
      sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})
  files = set()
  for name, module in list(sys.modules.items()):
    if name.startswith("__autograph_generated_file"):
      continue
    path = getattr(module, "__file__", None)
    if path and path.endswith(".py"):
      path = os.path.realpath(path)
      if not path.startswith(skip) and os.path.isfile(path):
        files.add(path)
  return sorted(files)


def _environment() -> dict:
  import flax, jaxlib, optax  # pylint: disable=g-import-not-at-top,multiple-imports
  devices = jax.devices()
  return {
      "versions": [sys.version, jax.__version__, jaxlib.__version__, flax.__version__,
                   optax.__version__],
      "devices": [len(devices), devices[0].platform, devices[0].device_kind,
                  jax.process_count()],
      "jax_config": sorted((k, repr(v)) for k, v in jax.config.values.items()),
      "env": sorted((k, v) for k, v in os.environ.items()
                    if k == "XLA_FLAGS" or k.startswith(("JAX_", "JAXGAN_"))),
  }


def digest(key, configs: Sequence[dict], args, in_shardings) -> str:
  """The name of the program for `key` over `args`: a hash of all it was traced from."""
  h = hashlib.sha256(f"jaxgan program v{VERSION}\n".encode())
  for path in _outside_sources():
    with open(path, "rb") as f:
      h.update(path.encode() + b"\0" + hashlib.sha256(f.read()).digest())
  leaves, tree = jax.tree.flatten(args)
  h.update(json.dumps({
      "key": repr(key), "configs": list(configs), "tree": str(tree),
      "leaves": [[list(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x)))]
                 for x in leaves],
      "shardings": [repr(s) for s in in_shardings],
      "provider": repr(convs.current_provider()), **_environment()},
      sort_keys=True, default=repr).encode())
  return h.hexdigest()[:32]


def _write_atomic(path: str, data: bytes):
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, path)   # a concurrent reader sees the old file or the whole new one
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


class Program:
  """A compiled program over (args...) -> outputs, with how it was made: `loaded` (from
  the program cache), `trace_s` (tracing and lowering, or loading), `xla_s`."""

  def __init__(self, compiled, out_tree, loaded: bool, trace_s: float, xla_s: float):
    self._compiled, self._out_tree = compiled, out_tree
    self.loaded, self.trace_s, self.xla_s = loaded, trace_s, xla_s

  def __call__(self, *args):
    return jax.tree.unflatten(self._out_tree, self._compiled(*jax.tree.leaves(args)))


class ProgramCache:
  """Exported programs in `directory`, for a run of `configs` (their dicts)."""

  def __init__(self, directory: str, configs: Sequence[dict], say: Callable[[str], None]):
    self.directory, self.configs, self._say = directory, list(configs), say
    self._failed = False
    os.makedirs(directory, exist_ok=True)

  def compile(self, key, fn: Callable, args: tuple, in_shardings: tuple, out_sharding,
              donate_argnums: Sequence[int] = (0,)) -> Optional[Program]:
    """`fn` compiled for `args` through the cache, or None when it cannot be exported
    (the caller then jits it as usual). in_shardings: one per argument."""
    if self._failed:
      return None
    flat_shardings = [s for a, s in zip(args, in_shardings) for _ in jax.tree.leaves(a)]
    sizes = [len(jax.tree.leaves(a)) for a in args]
    donate = tuple(i for n, (a, size) in enumerate(zip(args, sizes)) if n in donate_argnums
                   for i in range(sum(sizes[:n]), sum(sizes[:n]) + size))
    path = os.path.join(self.directory,
                        digest(key, self.configs, args, flat_shardings) + SUFFIX)
    t0 = time.perf_counter()
    loaded = self._load(path)
    if loaded is None:
      try:
        loaded = self._export(path, fn, args, flat_shardings, out_sharding, donate)
      except Exception as e:  # pylint: disable=broad-except
        self._failed = True
        self._say(f"Traced programs are not cached for this run ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:200]}); tracing each process as usual.")
        return None
      from_cache = False
    else:
      from_cache = True
    exported, out_tree = loaded
    runner = jax.jit(exported.call, in_shardings=flat_shardings, out_shardings=out_sharding,
                     donate_argnums=donate)
    lowered = runner.lower(*jax.tree.leaves(args))
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return Program(compiled, out_tree, from_cache, t1 - t0, time.perf_counter() - t1)

  @staticmethod
  def _load(path: str):
    try:
      with open(path, "rb") as f:
        blob = pickle.load(f)
      return jax.export.deserialize(bytearray(blob["exported"])), blob["out_tree"]
    except Exception:  # pylint: disable=broad-except
      return None    # missing, or unreadable (a crash mid-write cannot leave one; a foreign file can)

  @staticmethod
  def _export(path, fn, args, flat_shardings, out_sharding, donate):
    in_tree, box = jax.tree.structure(args), {}

    def flat(*leaves):
      out_leaves, box["out_tree"] = jax.tree.flatten(fn(*jax.tree.unflatten(in_tree, leaves)))
      return out_leaves

    provider = convs.current_provider()
    allowed = [jax.export.DisabledSafetyCheck.custom_call(t)
               for t in getattr(provider, "custom_call_targets", ())]
    jitted = jax.jit(flat, in_shardings=flat_shardings, out_shardings=out_sharding,
                     donate_argnums=donate)
    exported = jax.export.export(jitted, disabled_checks=allowed)(
        *[jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
          for x, s in zip(jax.tree.leaves(args), flat_shardings)])
    data = exported.serialize()
    _write_atomic(path, pickle.dumps({"exported": bytes(data), "out_tree": box["out_tree"]}))
    return jax.export.deserialize(data), box["out_tree"]
