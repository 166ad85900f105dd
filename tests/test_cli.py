"""launch.py as a user runs it: config files, overrides, errors, train then sample."""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.model.latent_dim=8", "--config.model.mlp.g_widths=(32,)",
        "--config.model.mlp.d_widths=(32,)", "--config.data.batch_size=16",
        "--config.data.max_examples=128", "--config.train.steps=4",
        "--config.train.log_every=2", "--config.train.sample_every=2",
        "--config.train.checkpoint_every=2", "--config.train.progress=False",
        "--config.eval.every=0"]


def launch(*args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_train_then_sample(tmp_path):
  wd = str(tmp_path / "w")
  r = launch("--config", "configs/gan.py:fashion", "--workdir", wd, *TINY)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "Trained to step 4" in r.stdout
  cfg = json.load(open(os.path.join(wd, "config.json")))
  assert cfg["model"]["mlp"]["g_widths"] == [32] and cfg["data"]["batch_size"] == 16
  r = launch("--workdir", wd, "--mode", "sample", "--num_samples", "30")
  assert r.returncode == 0, r.stderr[-3000:]
  images = np.load(os.path.join(wd, "samples.npz"))["images"]
  assert images.shape == (30, 28, 28, 1) and images.dtype == np.uint8
  assert os.path.exists(os.path.join(wd, "samples.png"))


def test_unknown_config_field_is_an_error(tmp_path):
  r = launch("--config", "configs/gan.py", "--workdir", str(tmp_path),
             "--config.train.stepz=3")
  assert r.returncode != 0
  assert "stepz" in r.stderr


def test_unknown_loss_lists_the_valid_ones(tmp_path):
  r = launch("--config", "configs/gan.py", "--workdir", str(tmp_path), "--config.loss=hinj",
             *TINY)
  assert r.returncode != 0
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert "config.loss='hinj'" in r.stderr and "Did you mean 'hinge'" in r.stderr
  assert "non_saturating" in r.stderr


def test_sample_without_checkpoint_says_what_to_do(tmp_path):
  os.makedirs(tmp_path / "empty")
  r = launch("--workdir", str(tmp_path / "empty"), "--mode", "sample")
  assert r.returncode != 0
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert "holds no run" in r.stderr and "train there first" in r.stderr


def test_missing_folder_names_the_path(tmp_path):
  r = launch("--config", "configs/dcgan.py:lego", "--workdir", str(tmp_path / "w"),
             f"--config.data.folder={tmp_path}/no_such_folder", *TINY)
  assert r.returncode != 0
  assert "no_such_folder" in r.stderr and "does not exist" in r.stderr


def test_diverged_run_prints_one_line_and_exits_1(tmp_path):
  r = launch("--config", "configs/gan.py", "--workdir", str(tmp_path), "--config.optim.d.lr=1e38",
             *TINY)
  assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("error: Non-finite") and "step 0" in last
