"""End-to-end runs of the training loop: outputs, sampling, resume, NaN guard."""
import json
import os

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan.eval import sampling
from jaxgan.run import stopping, train
from tests.conftest import tiny_config


def params_equal(a, b):
  """Whether two trees are bit-identical (chex names the first differing leaf)."""
  try:
    chex.assert_trees_all_equal(a, b)
  except AssertionError:
    return False
  return True


def test_end_to_end_writes_metrics_samples_and_checkpoints(tmp_path):
  wd = str(tmp_path / "run")
  state = train.train_and_evaluate(tiny_config(), wd)
  assert int(state.step) == 6
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [2, 4, 6]
  for k in ("d_loss", "g_loss", "d_x", "d_g_z", "d_real_acc", "d_fake_acc", "g_acc",
            "d_grad_norm", "g_grad_norm", "steps_per_s"):
    assert np.isfinite(rows[-1][k]), k
  assert 0 <= rows[-1]["d_x"] <= 1 and 0 <= rows[-1]["d_real_acc"] <= 1
  assert sorted(os.listdir(os.path.join(wd, "samples"))) == [
      "step_0000000.png", "step_0000003.png", "step_0000006.png"]
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["3", "6"]
  assert os.path.exists(os.path.join(wd, "losses.png"))
  stored = json.load(open(os.path.join(wd, "config.json")))
  assert stored["train"]["steps"] == 6 and stored["model"]["arch"] == "mlp"

  config, gan, restored = train.restore_for_sampling(wd)
  assert int(restored.step) == 6 and params_equal(restored.g.params, state.g.params)
  out = sampling.export(gan, restored, wd, 37, seed=0)
  npz = np.load(out["npz"])
  assert npz["images"].shape == (37, 28, 28, 1) and npz["images"].dtype == np.uint8
  assert "labels" not in npz
  assert os.path.exists(os.path.join(wd, "samples.png"))


def test_run_on_tfds_mock_data(tmp_path):
  c = tiny_config(**{"data.name": "mnist", "data.image_size": 32})
  with tfds.testing.mock_data(num_examples=64):
    state = train.train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 6


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
  full = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), str(tmp_path / "a"))
  part = tiny_config(**{"train.steps": 5})
  train.train_and_evaluate(part, str(tmp_path / "b"))
  resumed = train.train_and_evaluate(tiny_config(**{"train.steps": 8}), str(tmp_path / "b"))
  assert int(resumed.step) == 8
  assert params_equal(full.g.params, resumed.g.params)
  assert params_equal(full.d, resumed.d)


def test_same_seed_same_bits_and_other_seed_differs(tmp_path):
  a = train.train_and_evaluate(tiny_config(), str(tmp_path / "a"))
  b = train.train_and_evaluate(tiny_config(), str(tmp_path / "b"))
  c = train.train_and_evaluate(tiny_config(seed=1), str(tmp_path / "c"))
  assert params_equal(a.g.params, b.g.params) and params_equal(a.d.params, b.d.params)
  assert not params_equal(a.g.params, c.g.params)


def test_resume_with_a_different_config_names_the_fields(tmp_path):
  train.train_and_evaluate(tiny_config(), str(tmp_path))
  with pytest.raises(ValueError, match="these fields differ: loss, optim.d.lr"):
    train.train_and_evaluate(tiny_config(**{"loss": "lsgan", "optim.d.lr": 1e-3}),
                             str(tmp_path))


def test_non_finite_parameters_stop_the_run_and_name_the_step(tmp_path):
  # A finite but absurd learning rate: D's weights reach ~1e38, its outputs overflow
  # and G's update turns NaN within the first step.
  c = tiny_config(**{"optim.d.lr": 1e38})
  with pytest.raises(train.NonFiniteError, match="Non-finite parameters of G or D.* at step 0 .*no checkpoint"):
    train.train_and_evaluate(c, str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, "checkpoints", "3"))


def test_conditional_labels_required(tmp_path):
  c = tiny_config(**{"model.conditioning": "concat", "data.name": "mnist",
                     "data.label_key": ""})
  with tfds.testing.mock_data(num_examples=64):
    with pytest.raises(ValueError, match="needs labelled data"):
      train.train_and_evaluate(c, str(tmp_path))


def test_conditional_run_and_sampling(tmp_path):
  c = tiny_config(**{"model.conditioning": "concat"})
  train.train_and_evaluate(c, str(tmp_path))
  _, gan, state = train.restore_for_sampling(str(tmp_path))
  out = sampling.export(gan, state, str(tmp_path), 25, seed=0, labels_choice="even")
  npz = np.load(out["npz"])
  assert npz["labels"].tolist() == [i % 10 for i in range(25)]
  out = sampling.export(gan, state, str(tmp_path), 7, seed=0, labels_choice="3")
  assert np.load(out["npz"])["labels"].tolist() == [3] * 7
  with pytest.raises(ValueError, match="out of range"):
    sampling.make_labels(10, 4, "12")


def test_conditional_grid_keeps_z_fixed_along_rows():
  import jax
  from configs import gan as gan_cfg
  from jaxgan.core import state as state_lib
  c = gan_cfg.get_config()
  c.model.conditioning = "concat"
  gan, _ = state_lib.create(c, (28, 28, 1), 10)
  z, labels = sampling.grid_inputs(gan, 35, jax.random.PRNGKey(0))
  assert z.shape == (30, gan.latent_dim) and labels.tolist() == list(range(10)) * 3
  rows = np.asarray(z).reshape(3, 10, -1)
  assert np.all(rows == rows[:, :1])                      # one z per row
  assert not np.allclose(rows[0, 0], rows[1, 0])          # rows differ


def test_cgan_configs_build():
  from configs import cgan
  from jaxgan.core import state as state_lib
  for variant, shape, classes in (("concat", (28, 28, 1), 10), ("projection", (28, 28, 1), 10),
                                  ("acgan", (28, 28, 1), 10), ("celeba_blond", (64, 64, 3), 2)):
    c = cgan.get_config(variant)
    gan, _ = state_lib.create(c, shape, classes)
    assert gan.num_classes == classes and gan.conditioning == c.model.conditioning
  assert cgan.get_config("celeba_blond").data.label_key == "attributes/Blond_Hair"


def test_dcgan_on_a_folder_of_images(tmp_path):
  from PIL import Image
  from configs import dcgan as dcgan_cfg
  rs = np.random.RandomState(0)
  folder = tmp_path / "bricks"
  folder.mkdir()
  for i in range(20):
    Image.fromarray(rs.randint(0, 256, (50, 70, 3), np.uint8)).save(folder / f"{i:03d}.png")
  c = dcgan_cfg.get_config("lego")
  c.data.folder = str(folder)
  c.data.batch_size = 8
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 4
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 2, 1, 2
  c.train.sample_every, c.train.progress, c.sample.grid_size = 2, False, 4
  state = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert int(state.step) == 2
  rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  assert len(rows) == 2 and all(np.isfinite(r["d_loss"]) for r in rows)
  _, gan, restored = train.restore_for_sampling(str(tmp_path / "run"))
  assert gan.image_shape == (64, 64, 1)


def test_tensorboard_holds_scalars_images_and_histograms(tmp_path):
  from jaxgan.run.writers import read_tensorboard
  train.train_and_evaluate(tiny_config(), str(tmp_path))
  tags = read_tensorboard(str(tmp_path / "tensorboard"))
  for tag in ("d_loss", "g_loss", "d_x", "d_g_z", "steps_per_s", "lr_g", "lr_d",
              "samples/fixed_noise", "d_output/real", "d_output/fake"):
    assert tag in tags, (tag, sorted(tags))
  assert tags["g_loss"] == [(2, "scalars"), (4, "scalars"), (6, "scalars")]
  assert tags["samples/fixed_noise"] == [(0, "images"), (3, "images"), (6, "images")]
  assert {k for _, k in tags["d_output/real"]} == {"histograms"}


def test_a_run_written_before_the_config_and_state_layout_changed_resumes(tmp_path):
  """tests/data/legacy_run was written by the code of commit 602960e (old config layout,
  old TrainState without regularizer states, the penalty weight in hparams)."""
  import shutil
  from jaxgan.config import config_from_dict
  here = os.path.dirname(os.path.abspath(__file__))
  wd = str(tmp_path / "legacy")
  shutil.copytree(os.path.join(here, "data", "legacy_run"), wd)
  _, _, old = train.restore_for_sampling(wd)
  assert int(old.step) == 2 and float(old.hparams["reg/r1"]) == 0.5
  c = config_from_dict(json.load(open(os.path.join(wd, "config.json"))))
  c.train.steps = 4
  state = train.train_and_evaluate(c, wd)
  assert int(state.step) == 4
  # The old code trained the same run to step 4: the resumed one matches it.
  ref = np.load(os.path.join(here, "data", "legacy_run_step4_params.npz"))
  for name, tree in (("g", state.g.params), ("d", state.d.params)):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      np.testing.assert_allclose(leaf, ref[name + jax.tree_util.keystr(path)], rtol=1e-6,
                                 atol=1e-7)


def _fixture_cpu() -> bool:
  """Whether this CPU is of the kind tests/data/main_run was written on (AMD, AVX-512)."""
  try:
    info = open("/proc/cpuinfo").read()
  except OSError:
    return False
  return "AuthenticAMD" in info and "avx512f" in info


def test_a_run_written_before_the_package_moved_into_layers_resumes_bit_exactly(tmp_path):
  """tests/data/main_run was written by the code of commit 1196f37, before issue 36 moved
  the modules into role-named folders (conditional MLP, EMA, lazy R1, ADA): resumed at
  step 2 by today's code, it ends at step 4 exactly where that code's uninterrupted run
  ended (tests/data/make_main_run.py wrote both). Bit for bit on the CPU kind that wrote
  the fixture (AMD Zen 5, AVX-512); XLA's CPU code differs between processor kinds (an
  Intel Xeon with AMX moves 3 of 320 class-embedding values by one float32 ulp), so
  elsewhere to float32 rounding: resume on one machine is bit-exact (test_resilience)."""
  import shutil
  from jaxgan.config import config_from_dict
  here = os.path.dirname(os.path.abspath(__file__))
  wd = str(tmp_path / "main_run")
  shutil.copytree(os.path.join(here, "data", "main_run"), wd)
  c = config_from_dict(json.load(open(os.path.join(wd, "config.json"))))
  c.train.steps = 4
  state = train.train_and_evaluate(c, wd)
  assert int(state.step) == 4
  ref = np.load(os.path.join(here, "data", "main_run_step4_params.npz"))
  seen = set()
  for name, tree in (("g", state.g.params), ("ema", state.ema), ("d", state.d.params),
                     ("augment", state.augment), ("reg", state.reg)):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      key = name + jax.tree_util.keystr(path)
      if _fixture_cpu():
        np.testing.assert_array_equal(np.asarray(leaf), ref[key], err_msg=key)
      else:
        np.testing.assert_allclose(np.asarray(leaf), ref[key], rtol=1e-6, atol=1e-7,
                                   err_msg=key)
      seen.add(key)
  assert seen == set(ref.files)


def test_a_finished_run_given_fewer_steps_says_so(tmp_path, capsys):
  c = tiny_config(**{"train.steps": 2, "train.checkpoint_every": 2, "train.sample_every": 0})
  train.train_and_evaluate(c, str(tmp_path))
  capsys.readouterr()
  state = train.train_and_evaluate(tiny_config(**{"train.steps": 1, "train.checkpoint_every": 2,
                                                  "train.sample_every": 0}), str(tmp_path))
  assert int(state.step) == 2
  assert "already at step 2, at or past config.train.steps=1" in capsys.readouterr().out


def test_max_seconds_ends_the_run_like_its_last_step_and_resume_goes_on(tmp_path, monkeypatch):
  ticks = iter(range(10_000))
  monkeypatch.setattr(stopping, "clock", lambda: float(next(ticks)))  # one second per read
  wd = str(tmp_path / "b")
  stopped = train.train_and_evaluate(tiny_config(**{"train.max_seconds": 2.0}), wd)
  assert int(stopped.step) == 2          # read at the start, then after steps 1 and 2
  # ended as at the last step: a checkpoint and a grid at step 2 (both are due only at 3)
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["2"]
  assert os.path.exists(os.path.join(wd, "samples", "step_0000002.png"))
  resumed = train.train_and_evaluate(tiny_config(), wd)
  full = train.train_and_evaluate(tiny_config(), str(tmp_path / "a"))
  assert int(resumed.step) == 6 and params_equal(full.g.params, resumed.g.params)


def test_max_seconds_does_not_count_evaluation_time(monkeypatch):
  now = [100.0]
  monkeypatch.setattr(stopping, "clock", lambda: now[0])
  budget, loop = stopping.Budget(10.0), type("L", (), {"eval_seconds": 0.0})()
  now[0] = 109.0
  assert not budget.spent(loop)
  now[0], loop.eval_seconds = 115.0, 6.0       # 15 s, 6 of them evaluating: 9 s trained
  assert not budget.spent(loop)
  now[0] = 116.0
  assert budget.spent(loop)
  assert not stopping.Budget(0.0).spent(loop)   # 0: no budget
