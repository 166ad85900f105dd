"""The host-allocator tuning applies on glibc Linux, once, and can be switched off."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = ("from jaxgan.cpu import allocator; a = allocator.tune_host_allocator(); "
        "b = allocator.tune_host_allocator(); print(a, b)")


def _run(env_value):
  env = dict(os.environ, JAXGAN_TUNE_MALLOC=env_value)
  return subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True,
                        text=True, check=True).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_applies_once_on_linux_and_can_be_disabled():
  import platform  # pylint: disable=g-import-not-at-top
  if platform.libc_ver()[0] != "glibc":
    pytest.skip("not a glibc system")
  assert _run("1") == ["True", "True"]
  assert _run("0") == ["False", "False"]
