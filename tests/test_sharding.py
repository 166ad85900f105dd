"""Data parallelism: the step on 2 and 8 forced host devices matches the 1-device step."""
import json
import os
import subprocess
import sys

import pytest

from jaxgan.base import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sharded_step_matches_single_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  r = subprocess.run([sys.executable, "tests/multidevice_check.py"], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out["devices"] == 8
  for n in ("2", "8"):
    assert out[n]["batch_devices"] == int(n)     # the batch really is split
    assert out[n]["max_abs_diff"] < 1e-4, out    # same training up to reduction order
    assert out[n]["c_loss"] == pytest.approx(out[n]["c_loss_1"], rel=1e-4, abs=1e-4)


def test_batch_must_divide_over_devices():
  class FakeMesh:
    class devices:
      size = 3
  with pytest.raises(ValueError, match="divisible by the 3 devices"):
    sharding.check_batch_size(16, FakeMesh)
