"""A run survives crashes, kills and preemption, and resumes bit for bit (issue: exact
reproducibility). Subprocess tests drive launch.py as a cluster would."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.run import train
from jaxgan.base.errors import EXIT_PREEMPTED, UserError
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config", "configs/gan.py", "--config.model.latent_dim=8",
        "--config.model.mlp.g_widths=(32,)", "--config.model.mlp.d_widths=(32,)",
        "--config.data.batch_size=16", "--config.data.max_examples=256",
        "--config.train.log_every=10", "--config.train.sample_every=0",
        "--config.train.progress=False", "--config.eval.every=0"]


def launch(args, workdir, **kw):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.Popen([sys.executable, "launch.py", "--workdir", workdir, *args], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for_training(workdir, proc, timeout=120):
  """Blocks until the run has logged its first metrics line (it is inside the loop)."""
  path = os.path.join(workdir, "metrics.jsonl")
  t0 = time.time()
  while not os.path.exists(path) or os.path.getsize(path) == 0:
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() - t0 < timeout
    time.sleep(0.05)


def kill_and_resume(args, workdir, kills, rng, max_delay=2.0):
  """Runs `args` to completion, SIGKILLing it `kills` times at random moments after it
  started training; returns the number of launches."""
  launches = 0
  for _ in range(kills):
    p = launch(args, workdir)
    launches += 1
    wait_for_training(workdir, p)
    time.sleep(rng.uniform(0.0, max_delay))
    if p.poll() is not None:
      break
    p.send_signal(signal.SIGKILL)
    p.wait()
  while True:
    p = launch(args, workdir)
    launches += 1
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    return launches


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
  # with post-hoc EMA profiles (in the state) and their snapshots, every 70 steps: not
  # aligned with the checkpoints, so a resume rewrites snapshots written after them
  args = TINY + ["--config.train.steps=1500", "--config.train.checkpoint_every=50",
                 "--config.phema.sigma_rels=(0.05,0.1)", "--config.phema.snapshot_images=1120"]
  ref = launch(args, str(tmp_path / "ref"))
  _, err = ref.communicate(timeout=600)
  assert ref.returncode == 0, err[-3000:]
  launches = kill_and_resume(args, str(tmp_path / "killed"), kills=2, rng=random.Random(0),
                             max_delay=1.5)
  assert launches >= 2
  _, _, a = train.restore_for_sampling(str(tmp_path / "ref"))
  _, _, b = train.restore_for_sampling(str(tmp_path / "killed"))
  assert int(a.step) == int(b.step) == 1500
  chex.assert_trees_all_equal(a, b)
  from jaxgan.eval import posthoc_ema  # pylint: disable=g-import-not-at-top
  snaps = [posthoc_ema.list_snapshots(str(tmp_path / w)) for w in ("ref", "killed")]
  assert [s.images for s in snaps[0]] == [s.images for s in snaps[1]] == [
      1120 * i for i in range(1, 22)] + [1500 * 16]
  for x, y in zip(*snaps):
    chex.assert_trees_all_equal(list(posthoc_ema._profiles(x, a.g.params)),  # pylint: disable=protected-access
                                list(posthoc_ema._profiles(y, a.g.params)))  # pylint: disable=protected-access


def test_sigterm_saves_at_the_next_step_and_exits_cleanly(tmp_path):
  wd = str(tmp_path / "run")
  args = TINY + ["--config.train.steps=1000000", "--config.train.checkpoint_every=1000000"]
  p = launch(args, wd)
  wait_for_training(wd, p)
  p.send_signal(signal.SIGTERM)
  out, err = p.communicate(timeout=120)
  assert p.returncode == EXIT_PREEMPTED, err[-3000:]  # a scheduler restarts it
  assert "Signal 15: saving a checkpoint at step" in out
  assert "Run the same command to resume" in out and "Traceback" not in err
  steps = [int(d) for d in os.listdir(os.path.join(wd, "checkpoints")) if d.isdigit()]
  assert len(steps) == 1 and 10 <= steps[0] < 1000000
  # The same command resumes from there (here with a budget just past it).
  r = launch(TINY + [f"--config.train.steps={steps[0] + 3}",
                     "--config.train.checkpoint_every=1000000"], wd)
  out, err = r.communicate(timeout=300)
  assert r.returncode == 0, err[-3000:]
  assert f"Resumed from the checkpoint of step {steps[0]}" in out
  assert f"Trained to step {steps[0] + 3}" in out


def test_half_written_newest_checkpoint_is_ignored(tmp_path):
  ref = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), str(tmp_path / "ref"))
  wd = tmp_path / "run"
  train.train_and_evaluate(tiny_config(), str(wd))  # checkpoints 3 and 6
  # A crash while writing step 9: Orbax's temporary directory holds part of the files.
  tmp = wd / "checkpoints" / "9.orbax-checkpoint-tmp"
  shutil.copytree(wd / "checkpoints" / "6", tmp)
  shutil.rmtree(tmp / "state")
  resumed = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), str(wd))
  chex.assert_trees_all_equal((ref.g.params, ref.d), (resumed.g.params, resumed.d))
  assert not tmp.exists()  # cleaned up at start
  assert sorted(os.listdir(wd / "checkpoints")) == ["3", "6", "8"]


def test_checkpoints_keep_the_last_k(tmp_path):
  c = tiny_config(**{"train.steps": 12, "train.checkpoint_every": 2, "checkpoint.keep": 2})
  train.train_and_evaluate(c, str(tmp_path))
  assert sorted(int(d) for d in os.listdir(tmp_path / "checkpoints")) == [10, 12]


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
  from jaxgan.run import checkpoint
  from jaxgan.core import state as state_lib
  from configs import dcgan
  c = dcgan.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 4
  c.ema_decay = 0.99
  _, st = state_lib.create(c, (64, 64, 1), 0)
  ck = checkpoint.Checkpointer(str(tmp_path), async_save=False)
  ck.save(7, st, {"note": "x"})
  ck.wait()
  template = jax.tree.map(jnp.zeros_like, st)
  back, meta = ck.restore(template)
  assert meta == {"note": "x"}
  chex.assert_trees_all_equal(st, back)
  assert np.asarray(back.key).dtype == np.uint32


def test_population_sigterm_saves_and_resumes_bit_identically(tmp_path):
  pop = ["--seeds", "0,1", "--population"]
  args = TINY + ["--config.train.steps=2000", "--config.train.checkpoint_every=1000000"]
  ref = launch(args + pop, str(tmp_path / "ref"))
  _, err = ref.communicate(timeout=600)
  assert ref.returncode == 0, err[-3000:]
  wd = str(tmp_path / "run")
  p = launch(args + pop, wd)
  wait_for_training(os.path.join(wd, "seed=0"), p)
  p.send_signal(signal.SIGTERM)
  out, err = p.communicate(timeout=120)
  assert p.returncode == EXIT_PREEMPTED, err[-3000:]
  saved = [int(d) for d in os.listdir(os.path.join(wd, "population", "checkpoints"))]
  assert len(saved) == 1 and 10 <= saved[0] < 2000, out
  r = launch(args + pop, wd)
  out, err = r.communicate(timeout=600)
  assert r.returncode == 0, err[-3000:]
  assert f"Resumed from the checkpoint of step {saved[0]}" in out
  for member in ("seed=0", "seed=1"):
    _, _, a = train.restore_for_sampling(str(tmp_path / "ref" / member))
    _, _, b = train.restore_for_sampling(os.path.join(wd, member))
    assert int(a.step) == int(b.step) == 2000
    chex.assert_trees_all_equal(a, b)


def test_a_second_process_on_the_same_workdir_is_refused_then_takes_over(tmp_path):
  wd = str(tmp_path / "run")
  args = TINY + ["--config.train.steps=1000000", "--config.train.checkpoint_every=100"]
  first = launch(args, wd)
  wait_for_training(wd, first)
  second = launch(args, wd)
  _, err = second.communicate(timeout=120)
  assert second.returncode == 2 and "Traceback" not in err, err[-3000:]
  assert f"is in use by process {first.pid} on host" in err and "another --workdir" in err
  assert first.poll() is None  # the holder is untouched
  first.send_signal(signal.SIGKILL)
  first.wait()
  # The dead holder's lock is taken over: the run resumes.
  third = launch(TINY + ["--config.train.steps=3", "--config.train.checkpoint_every=100"], wd)
  out, err = third.communicate(timeout=300)
  assert third.returncode == 0, err[-3000:]


def _damage(ckpt_dir, how):
  """Truncates the largest data file of a checkpoint's state, or deletes its metadata."""
  if how == "truncate":
    files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(ckpt_dir, "state"))
             for f in fs]
    big = max(files, key=os.path.getsize)
    with open(big, "r+b") as f:
      f.truncate(os.path.getsize(big) // 2)
  else:
    os.remove(os.path.join(ckpt_dir, "meta", "metadata"))


@pytest.mark.parametrize("how", ["truncate", "missing"])
def test_a_damaged_latest_checkpoint_is_named_and_the_one_before_resumes(tmp_path, how):
  ref = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), str(tmp_path / "ref"))
  wd = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config(), wd)  # checkpoints 3 and 6
  _damage(os.path.join(wd, "checkpoints", "6"), how)
  with pytest.raises(UserError, match=r"Checkpoint step 6 in .* cannot be restored \(.*\)\. "
                     r"The newest step that can be is 3: add --resume_step=3"):
    train.train_and_evaluate(tiny_config(**{"train.steps": 8}), wd)
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["3", "6"]  # nothing deleted
  with pytest.raises(UserError, match=r"Checkpoint step 6 .* readable steps: \[3\]; pass "
                     r"--checkpoint 3"):
    train.restore_for_sampling(wd)
  resumed = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), wd, resume_step=3)
  chex.assert_trees_all_equal((ref.g.params, ref.d), (resumed.g.params, resumed.d))
  assert os.path.isdir(os.path.join(wd, "checkpoints_set_aside", "6"))  # kept aside
  rows = [json.loads(l)["step"] for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert rows == sorted(rows) and len(rows) == len(set(rows))  # no duplicated rows


def test_resume_with_another_width_names_the_field_before_reading_the_state(tmp_path):
  train.train_and_evaluate(tiny_config(), str(tmp_path))
  with pytest.raises(UserError, match="these fields differ: model.mlp.g_widths"):
    train.train_and_evaluate(tiny_config(**{"model.mlp.g_widths": (64,)}), str(tmp_path))
