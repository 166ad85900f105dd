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


@pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed")
def test_the_layers_hold():
  r = lint(ROOT)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
  assert "0 broken" in r.stdout


@pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed")
def test_an_upward_import_breaks_the_contract(tmp_path):
  copy = tmp_path / "repo"
  shutil.copytree(os.path.join(ROOT, "jaxgan"), copy / "jaxgan",
                  ignore=shutil.ignore_patterns("__pycache__", "embedded"))
  shutil.copy(os.path.join(ROOT, "pyproject.toml"), copy / "pyproject.toml")
  with open(copy / "jaxgan" / "core" / "losses.py", "a") as f:
    f.write("\nfrom jaxgan.eval import sampling  # a back-edge: core -> eval\n")
  r = lint(copy)
  assert r.returncode != 0
  assert "jaxgan.core.losses -> jaxgan.eval.sampling" in r.stdout
