"""config.data.on_device (issue 35): the dataset held on the device and each batch
gathered there from the host path's seeded order; training is bit-identical to the host
path (weights, optimizer states, metrics rows), with several steps per call, across a
resume that switches paths, and in a population. Where it cannot apply: one-line errors."""
import json
import os

import chex
import numpy as np
import pytest

from jaxgan.run import train, validate
from jaxgan.data import device, sources
from jaxgan.base.errors import UserError
from tests.conftest import tiny_config

EVERY = {"train.log_every": 4, "train.checkpoint_every": 4, "train.sample_every": 0,
         "train.tensorboard": False, "train.n_critic": 2, "data.max_examples": 64}


def cfg(**overrides):
  return tiny_config(**{**EVERY, "train.steps": 8, **overrides})


def rows(workdir):
  """metrics.jsonl without the wall-clock rate."""
  out = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in out]


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
  """The host path's run: (final state, metrics rows)."""
  wd = str(tmp_path_factory.mktemp("host") / "run")
  return train.train_and_evaluate(cfg(), wd), rows(wd)


@pytest.mark.parametrize("per_call", [1, 4])
def test_on_device_is_bit_identical_to_the_host_path(host_run, tmp_path, per_call, capsys):
  state, host_rows = host_run
  wd = str(tmp_path / "dev")
  dev = train.train_and_evaluate(cfg(**{"data.on_device": True,
                                        "train.steps_per_call": per_call}), wd)
  assert "on the device: 64 images" in capsys.readouterr().out
  chex.assert_trees_all_equal(state, dev)
  assert rows(wd) == host_rows and [r["step"] for r in host_rows] == [4, 8]


def test_resume_across_the_two_paths_is_bit_identical(host_run, tmp_path):
  state, host_rows = host_run
  wd = str(tmp_path / "parts")
  train.train_and_evaluate(cfg(**{"train.steps": 4}), wd)             # host path to step 4
  resumed = train.train_and_evaluate(                                 # on the device to 8
      cfg(**{"data.on_device": True, "train.steps_per_call": 2}), wd)
  chex.assert_trees_all_equal(state, resumed)
  assert rows(wd) == host_rows


def test_population_on_device_equals_the_host_population(tmp_path):
  trials = [{"seed": 0}, {"seed": 1}]
  host = train.train_and_evaluate(cfg(**{"train.steps": 4}), str(tmp_path / "h"),
                                  trials=trials)
  dev = train.train_and_evaluate(cfg(**{"train.steps": 4, "data.on_device": True}),
                                 str(tmp_path / "d"), trials=trials)
  chex.assert_trees_all_equal(host, dev)


def test_the_gather_returns_the_host_batches():
  from jaxgan.base import sharding  # pylint: disable=g-import-not-at-top
  from jaxgan.data import pipeline  # pylint: disable=g-import-not-at-top
  data = sources.load_embedded(28, 1, max_examples=64)
  batches = pipeline.Batches(data, 16, 2, seed=3)
  on = device.DeviceData(data, sharding.make_mesh(), say=lambda _: None)
  for step in (0, 1, 5):      # 5 is in the third epoch
    idx = batches.step_indices(step)
    assert idx.dtype == np.int32 and idx.shape == (2, 16)
    got = on.gather(idx, 1)
    want = batches.for_step(step)
    assert set(got) == set(want) == {"images", "labels"}
    for k in want:
      np.testing.assert_array_equal(np.asarray(got[k]), want[k])
      assert got[k].dtype == want[k].dtype


def test_refusals_are_one_line_and_name_the_field(tmp_path):
  with pytest.raises(UserError, match=r"config.data.on_device=True .*source='stream'") as e:
    validate.validate(tiny_config(**{"data.on_device": True, "data.source": "stream",
                                     "data.folder": str(tmp_path)}))
  assert "\n" not in str(e.value)
  data = sources.load_embedded(28, 1, max_examples=32)
  with pytest.raises(UserError, match=r"config.data.on_device=True .*2 processes") as e:
    device.check(data, process_count=2)
  assert "\n" not in str(e.value) and "on_device=False" in str(e.value)


def test_a_streamed_dataset_is_refused(tmp_path):
  from jaxgan.data import prepare  # pylint: disable=g-import-not-at-top
  from tests.test_stream import make_folder  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "out")
  prepare.prepare(make_folder(str(tmp_path / "src"), per_class=8), out, size=8, channels=3)
  c = tiny_config(**{"data.folder": out, "data.image_size": 8, "data.channels": 3,
                     "data.max_examples": 0, "data.batch_size": 8,
                     "data.max_host_memory": "1KB", "data.on_device": True})
  with pytest.raises(UserError, match=r"config.data.on_device=True .*streamed") as e:
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert "\n" not in str(e.value)
