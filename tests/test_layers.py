"""The package's layers (pyproject.toml, [tool.importlinter]) hold, and the check is real:
a module that imports from a layer above its own makes `lint-imports` fail."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable),
                                                    "lint-imports")


def lint(cwd):
  return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True)


def lint_with(tmp_path, module, line):
  """lint-imports on a copy of the package with `line` appended to jaxgan/<module...>."""
  copy = tmp_path / "repo"
  shutil.copytree(os.path.join(ROOT, "jaxgan"), copy / "jaxgan",
                  ignore=shutil.ignore_patterns("__pycache__", "embedded"))
  shutil.copy(os.path.join(ROOT, "pyproject.toml"), copy / "pyproject.toml")
  with open(copy.joinpath("jaxgan", *module), "a") as f:
    f.write(f"\n{line}\n")
  return lint(copy)


@pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed")
def test_the_layers_hold():
  r = lint(ROOT)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
  assert "0 broken" in r.stdout


@pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed")
def test_an_upward_import_breaks_the_contract(tmp_path):
  r = lint_with(tmp_path, ("core", "losses.py"),
                "from jaxgan.eval import sampling  # a back-edge: core -> eval")
  assert r.returncode != 0
  assert "jaxgan.core.losses -> jaxgan.eval.sampling" in r.stdout


def _forbidden_cpu_contract():
  import tomllib  # pylint: disable=g-import-not-at-top
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
  return next(c for c in contracts if c["type"] == "forbidden"
              and c["forbidden_modules"] == ["jaxgan.cpu"])


def test_the_cpu_corner_contract_covers_every_module_but_platform():
  """The forbidden contract names every run module but platform.py, and every other layer:
  a run module added later cannot import jaxgan.cpu unnoticed."""
  run = sorted(f"jaxgan.run.{f[:-3]}" for f in os.listdir(os.path.join(ROOT, "jaxgan", "run"))
               if f.endswith(".py") and f not in ("__init__.py", "platform.py"))
  others = ["jaxgan.base", "jaxgan.config", "jaxgan.core", "jaxgan.data", "jaxgan.eval",
            "jaxgan.ops", "jaxgan.pretrained"]
  assert sorted(_forbidden_cpu_contract()["source_modules"]) == sorted(others + run)


@pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed")
def test_the_core_importing_the_cpu_corner_breaks_the_contract(tmp_path):
  r = lint_with(tmp_path, ("core", "models", "layers.py"),
                "from jaxgan.cpu import onednn  # the core reaching into the CPU corner")
  assert r.returncode != 0
  assert "jaxgan.cpu is imported by jaxgan.run.platform only BROKEN" in r.stdout


_RUN_ON = r"""
import sys, jax
backend = sys.argv[1]
if backend != "cpu":   # what platform.py sees on a GPU host; the arrays stay on this CPU
  jax.default_backend = lambda: backend
from tests.conftest import tiny_config
from configs import sngan
from jaxgan.run import train
c = sngan.get_config("fashion_dcgan")
c.data.name, c.data.max_examples, c.data.batch_size = "", 64, 8
c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
c.train.steps, c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 1, 1, 0, 1
c.train.progress, c.train.tensorboard, c.eval.every = False, False, 0
c.checkpoint.async_save = False
calls = [0]
if backend == "cpu":
  from jaxgan.cpu import conv_provider
  answer = conv_provider.OneDNNConvs.__call__
  def counted(self, *a):
    calls[0] += 1
    return answer(self, *a)
  conv_provider.OneDNNConvs.__call__ = counted
train.train_and_evaluate(c, sys.argv[2])
from jaxgan.ops import convs
print("RESULT", "jaxgan.cpu" in sys.modules, calls[0] > 0, convs.current_provider())
"""


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_a_run_uses_the_cpu_corner_on_cpu_only(backend, tmp_path):
  """On CPU a training run's convolutions go through the oneDNN provider; on another
  backend jaxgan.cpu is never imported; either way no provider is left installed."""
  r = subprocess.run([sys.executable, "-c", _RUN_ON, backend, str(tmp_path / "w")], cwd=ROOT,
                     capture_output=True, text=True,
                     env={**os.environ, "JAXGAN_COMPILE_CACHE": "off"})
  line = [l for l in r.stdout.splitlines() if l.startswith("RESULT")]
  assert line, r.stdout[-2000:] + r.stderr[-3000:]
  on_cpu = backend == "cpu"
  assert line[0] == f"RESULT {on_cpu} {on_cpu} None"
