"""JAX's persistent compilation cache (jaxgan/run/compile_cache.py, config.train.compile_cache):
a program compiled once is loaded, not compiled, by the next process (here: the same
program after jax.clear_caches(), which empties JAX's in-memory caches as a new process
starts without them)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.base.errors import UserError
from jaxgan.run import compile_cache


@pytest.fixture
def cache_dir(tmp_path):
  path = compile_cache.enable(str(tmp_path / "xla"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # even tiny programs
  yield path
  compile_cache.enable("off")   # the rest of this worker's tests run as before


def _program(x):
  return jnp.tanh(x @ x.T).sum(axis=0) * 3.0


def test_a_second_compile_of_the_same_program_is_loaded_from_the_cache(cache_dir):
  x = jnp.arange(12.0).reshape(3, 4)
  with compile_cache.Timer() as first:
    want = jax.jit(_program).lower(x).compile()(x)
  assert not first.from_cache
  assert os.listdir(cache_dir)                      # the executable was written
  jax.clear_caches()                                # as a new process starts
  with compile_cache.Timer() as second:
    got = jax.jit(_program).lower(x).compile()(x)
  assert second.from_cache
  assert "loaded from the compilation cache" in second.note()
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_auto_a_path_and_off(monkeypatch, tmp_path):
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "root"))
  monkeypatch.delenv("JAXGAN_COMPILE_CACHE", raising=False)
  assert compile_cache.resolve("auto") == str(tmp_path / "root" / "xla")
  assert compile_cache.resolve(str(tmp_path / "mine")) == str(tmp_path / "mine")
  assert compile_cache.resolve("off") is None
  monkeypatch.setenv("JAXGAN_COMPILE_CACHE", "off")
  assert compile_cache.resolve("auto") is None       # the environment turns it off too


def test_off_compiles_without_the_cache(tmp_path):
  assert compile_cache.enable("off") is None
  x = jnp.ones((2, 2))
  with compile_cache.Timer() as t:
    jax.jit(_program).lower(x).compile()
  assert not t.from_cache and t.note() == ""


def test_a_directory_that_cannot_be_made_is_a_one_line_error(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(UserError, match=r"config.train.compile_cache=.*cannot create.*'off'"):
    compile_cache.enable(str(blocker / "xla"))
