"""Traced programs on disk (jaxgan/run/program_cache.py): a second process loads the
program instead of tracing the Python, runs bit-identically, and any change to what the
trace depends on gives a new program."""
import functools
import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.run import program_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = jax.sharding.make_single_device_sharding(jax.devices()[0])


def _args():
  state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.zeros((), jnp.int32)}
  return state, {"x": np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)}


def _step(traced, state, batch):
  traced.append(1)                      # runs only when the Python is traced
  y = jnp.tanh(batch["x"] @ state["w"].T)
  new = {"w": state["w"] - 0.1 * y.T @ batch["x"], "step": state["step"] + 1}
  return new, {"loss": jnp.sum(y ** 2)}


def _compile(cache, traced, key="k", args=None):
  args = args or _args()
  return cache.compile(key, functools.partial(_step, traced), args, (CPU, CPU), CPU), args


def test_a_second_cache_loads_the_program_without_tracing_and_runs_it_identically(tmp_path):
  said, traced = [], []
  first, args = _compile(program_cache.ProgramCache(str(tmp_path), [{"a": 1}], said.append),
                         traced)
  assert not first.loaded and len(traced) == 1
  assert [f for f in os.listdir(tmp_path) if f.endswith(program_cache.SUFFIX)]
  want = first(*_args())
  jax.clear_caches()                    # as a new process starts
  second, _ = _compile(program_cache.ProgramCache(str(tmp_path), [{"a": 1}], said.append),
                       traced)
  assert second.loaded and len(traced) == 1          # not traced again
  got = second(*_args())
  direct = jax.jit(functools.partial(_step, []))(*_args())
  for a, b, c in zip(jax.tree.leaves(got), jax.tree.leaves(want), jax.tree.leaves(direct)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
  assert jax.tree.structure(got) == jax.tree.structure(direct)
  assert said == []


def test_what_the_trace_depends_on_changes_the_digest(tmp_path, monkeypatch):
  state, batch = _args()
  base = program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3)
  assert base == program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3)
  assert base != program_cache.digest("k2", [{"a": 1}], (state, batch), [CPU] * 3)
  assert base != program_cache.digest("k", [{"a": 2}], (state, batch), [CPU] * 3)
  wider = ({**state, "w": jnp.zeros((2, 4))}, batch)
  assert base != program_cache.digest("k", [{"a": 1}], wider, [CPU] * 3)
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
  assert base != program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3)
  monkeypatch.delenv("XLA_FLAGS")
  # a loaded module's source (a plugin, a config file, jaxgan itself)
  plugin = tmp_path / "my_plugin.py"
  plugin.write_text("X = 1\n")
  monkeypatch.setitem(sys.modules, "my_plugin", types.SimpleNamespace(__file__=str(plugin)))
  with_plugin = program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3)
  assert with_plugin != base
  plugin.write_text("X = 2\n")
  changed = program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3)
  assert changed != with_plugin
  # TensorFlow's autograph writes a new temporary module per process: not part of it
  graph = tmp_path / "__autograph_generated_filex1y2.py"
  graph.write_text("def f(): pass\n")
  monkeypatch.setitem(sys.modules, "__autograph_generated_filex1y2",
                      types.SimpleNamespace(__file__=str(graph)))
  assert program_cache.digest("k", [{"a": 1}], (state, batch), [CPU] * 3) == changed


def test_an_unreadable_program_file_is_made_again(tmp_path):
  traced = []
  cache = program_cache.ProgramCache(str(tmp_path), [{}], print)
  _compile(cache, traced)
  (name,) = [f for f in os.listdir(tmp_path) if f.endswith(program_cache.SUFFIX)]
  (tmp_path / name).write_bytes(b"not a program")
  jax.clear_caches()
  again, _ = _compile(program_cache.ProgramCache(str(tmp_path), [{}], print), traced)
  assert not again.loaded and len(traced) == 2
  assert again(*_args())[0]["step"] == 1


def test_a_program_that_cannot_be_exported_falls_back_once_and_says_why(tmp_path):
  said = []
  cache = program_cache.ProgramCache(str(tmp_path), [{}], said.append)

  def host(state, batch):   # a host callback has no serialised form
    y = jax.pure_callback(lambda v: np.asarray(v) * 2, jax.ShapeDtypeStruct((4, 3), jnp.float32),
                          batch["x"])
    return state, {"loss": jnp.sum(y)}
  assert cache.compile("k", host, _args(), (CPU, CPU), CPU) is None
  assert len(said) == 1 and "not cached for this run" in said[0]
  assert cache.compile("k2", host, _args(), (CPU, CPU), CPU) is None and len(said) == 1


def _launch(workdir, cache, steps=4):
  r = subprocess.run(
      [sys.executable, "launch.py", "--config", "configs/default.py", "--workdir", str(workdir),
       f"--config.train.steps={steps}", "--config.train.log_every=1",
       "--config.train.sample_every=0", "--config.eval.every=0", "--config.train.progress=False",
       "--config.train.tensorboard=False", "--config.data.max_examples=64",
       "--config.data.batch_size=8", "--config.model.mlp.g_widths=16,",
       "--config.model.mlp.d_widths=16,", f"--config.train.compile_cache={cache}"],
      cwd=ROOT, capture_output=True, text=True, env={**os.environ, "JAXGAN_COMPILE_CACHE": ""})
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  compiled = [l for l in (r.stdout + r.stderr).splitlines() if "Compiled the first" in l]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(l) for l in f]
  return compiled[0], [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k}
                       for r in rows]


def test_a_second_launch_loads_the_traced_program_and_trains_identically(tmp_path):
  cache = tmp_path / "xla"
  first, rows_first = _launch(tmp_path / "a", cache)
  second, rows_second = _launch(tmp_path / "b", cache)
  off, rows_off = _launch(tmp_path / "c", "off")
  assert "tracing, lowering and saving the program" in first
  assert "traced program loaded from the program cache" in second
  assert "loaded from the compilation cache" in second
  assert "tracing and lowering" in off
  assert rows_first == rows_second == rows_off and len(rows_first) == 4
