"""Fine-tuning (config.init_from, init_from_parts) and Freeze-D (model.freeze_d)."""
import json
import os

import jax
import numpy as np
import pytest

from jaxgan.base import keypaths
from jaxgan.base.errors import UserError
from jaxgan.core import models, state as state_lib, train_step as ts
from jaxgan.run import init_from, train
from jaxgan.run.restore import restore_for_sampling
from tests.conftest import tiny_config


def _config(**over):
  return tiny_config(**{"model.mlp.d_widths": (32, 16), "train.sample_every": 0, "ema_decay": 0.9,
                        "train.checkpoint_every": 2, "train.steps": 2, **over})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("finetune") / "source")
  train.train_and_evaluate(_config(), workdir)
  return workdir


def _equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_the_new_run_starts_from_the_sources_weights_with_fresh_optimizers(source):
  _, src = restore_for_sampling(source)[1:]
  gan, initial = state_lib.create(_config(seed=7), (28, 28, 1), 10)
  state, record = init_from.initial_state(source + ":2", "g_d", initial)
  assert _equal(state.g.params, src.g.params) and _equal(state.d.params, src.d.params)
  assert src.ema is not None and _equal(state.ema, src.ema)
  assert int(state.step) == 0 and _equal(state.g.opt_state, initial.g.opt_state)
  assert not _equal(src.g.opt_state, initial.g.opt_state)   # the source's moved
  assert record == {"init_from": os.path.abspath(source), "step": 2, "parts": "g_d",
                    "ema": True}
  g_only, _ = init_from.initial_state(source, "g", initial)
  assert _equal(g_only.g.params, src.g.params) and _equal(g_only.d.params, initial.d.params)


def test_a_fine_tuned_run_records_its_source_and_resumes_bit_exactly(source, tmp_path):
  straight = train.train_and_evaluate(_config(init_from=source, **{"train.steps": 4}),
                                      str(tmp_path / "a"))
  with open(tmp_path / "a" / init_from.RECORD) as f:
    assert json.load(f)["init_from"] == os.path.abspath(source)
  train.train_and_evaluate(_config(init_from=source), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(_config(init_from=source, **{"train.steps": 4}),
                                     str(tmp_path / "b"))
  assert int(resumed.step) == 4
  assert _equal((straight.g.params, straight.d.params, straight.ema),
                (resumed.g.params, resumed.d.params, resumed.ema))


def test_a_restart_before_the_first_checkpoint_takes_the_recorded_step(tmp_path):
  assert init_from.recorded(str(tmp_path)) == ""
  init_from.write_record(str(tmp_path), {"init_from": "/runs/src", "step": 2, "parts": "g"})
  assert init_from.recorded(str(tmp_path)) == "/runs/src:2"
  assert init_from.parse("/runs/src:2") == ("/runs/src", "2")
  assert init_from.parse("runs/a:b") == ("runs/a:b", "latest")


def test_other_shapes_are_refused_naming_the_layers(source, tmp_path):
  c = _config(init_from=source, **{"model.mlp.d_widths": (32, 8)})
  with pytest.raises(UserError, match=r"config.init_from='.*source': 3 layer\(s\) differ "
                     r"from this config's: d/hidden/1/bias \(16,\) there, \(8,\) here; "
                     r"d/hidden/1/kernel \(32, 16\) there, \(32, 8\) here.*"
                     r"or take G only with --config.init_from_parts=g\."):
    train.train_and_evaluate(c, str(tmp_path / "x"))
  with pytest.raises(UserError, match="has no checkpoints/"):
    train.train_and_evaluate(_config(init_from=str(tmp_path / "nowhere")), str(tmp_path / "y"))
  with pytest.raises(UserError, match=r"--checkpoint='9': no such checkpoint"):
    train.train_and_evaluate(_config(init_from=source + ":9"), str(tmp_path / "z"))


def test_freeze_d_keeps_the_first_blocks_and_trains_the_rest():
  c = _config(**{"model.freeze_d": 1})
  gan, state = state_lib.create(c, (28, 28, 1), 10)
  images = np.random.RandomState(0).randint(0, 256, (1, 16, 28, 28, 1)).astype(np.uint8)
  new, _ = jax.jit(ts.make_train_step(gan, c))(state, {"images": images})
  d0, d1 = state.d.params, new.d.params
  assert _equal(d0["hidden"][0], d1["hidden"][0])
  assert not np.array_equal(d0["hidden"][1]["kernel"], d1["hidden"][1]["kernel"])
  assert not np.array_equal(d0["out"]["kernel"], d1["out"]["kernel"])
  with pytest.raises(UserError, match=r"freeze_d=2: the 'mlp' discriminator has 2 blocks.*"
                     r"use 1 to 1\."):
    state_lib.create(_config(**{"model.freeze_d": 2}), (28, 28, 1), 10)


@pytest.mark.parametrize("arch,over,first", [
    ("dcgan", {}, ("convs/0",)),
    ("stylegan2", {"model.stylegan2.channel_base": 256, "model.stylegan2.channel_max": 16},
     ("blocks/0",)),
    ("r3gan2", {"model.r3gan2.widths": (16, 16), "model.r3gan2.blocks": (1, 1)},
     ("extract", "stages/0")),
])
def test_freeze_units_start_at_the_input(arch, over, first):
  c = tiny_config(**{"model.arch": arch, "data.image_size": 16, **over})
  _, d = models.build(c.model, (16, 16, 1), 0, 0)
  from flax import nnx
  params = nnx.state(d, nnx.Param)
  mask = models.freeze_mask(d, params, 1, arch)
  names = init_from._shapes(mask, "d")
  flags = dict(zip(names, jax.tree.leaves(mask)))
  frozen = {k for k, v in flags.items() if v}
  assert frozen and all(k.split("/", 1)[1].startswith(first) for k in frozen)
  assert {k for k in flags if any(k.split("/", 1)[1].startswith(p + "/") for p in first)} == frozen


def test_leaf_names_are_the_checkpoints_for_dict_list_and_attribute_keys():
  from typing import NamedTuple  # pylint: disable=g-import-not-at-top
  from jaxgan.run import checkpoint  # pylint: disable=g-import-not-at-top

  class Pair(NamedTuple):
    g: dict
    d: list

  tree = Pair({"params": {"hidden": [np.zeros(2)]}}, [np.ones(1), {"kernel": np.ones(3)}])
  names = [keypaths.name(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]
  assert names == ["g/params/hidden/0", "d/0", "d/1/kernel"]
  assert list(checkpoint.leaf_paths(tree)) == names
