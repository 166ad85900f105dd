"""The config schema: one source for defaults, resume and population policies, migration."""
import json
import os

import pytest

from jaxgan import config as C
from jaxgan.core import models, state as state_lib

HERE = os.path.dirname(os.path.abspath(__file__))


def test_defaults_hold_every_schema_field_and_each_architecture_block():
  flat = C.flatten(C.config_to_dict(C.default_config()))
  fields = C.all_fields()
  assert set(flat) == set(fields)
  for arch in models.ARCHITECTURES.names():
    assert any(k.startswith(f"model.{arch}.") for k in flat), arch
  assert flat["model.mlp.g_widths"] == [256, 512, 1024]
  assert flat["model.dcgan.start_size"] == 4


def test_population_fields_are_exactly_what_the_state_or_optimizer_carries():
  # A population may vary a field only if the step reads it from the state: the seed
  # (the state's key), the injected optimizer hyperparameters, TrainState.hparams.
  injected = {"lr", "b1", "b2", "eps", "decay", "weight_decay"}
  for f in C.population_fields():
    ok = (f == "seed" or f == "penalty_weight" or f in state_lib.HPARAMS
          or f == "augment.p"   # ADA's initial p: TrainState.augment["p"]
          or (f.startswith("optim.") and f.split(".")[-1] in injected))
    assert ok, f
  assert set(state_lib.HPARAMS) <= set(C.population_fields())


def test_stored_config_of_an_old_run_is_migrated():
  stored = json.load(open(os.path.join(HERE, "data", "legacy_run", "config.json")))
  assert "g_widths" in stored["model"]  # the layout before per-architecture blocks
  c = C.config_from_dict(stored)
  assert c.model.mlp.g_widths == (4,) and c.model.mlp.d_widths == (4,)
  assert c.penalty == "r1" and c.penalty_weight == 0.5 and c.labels.smoothing == 0.1
  assert C.incompatible_fields(stored, C.config_to_dict(c)) == []


def test_clip_penalty_shorthand_equals_the_projection_field():
  old = C.config_to_dict(C.default_config())
  old.update(penalty="clip", clip_value=0.02)
  new = C.default_config()
  new.optim.d.clip = 0.02
  assert C.incompatible_fields(old, C.config_to_dict(new)) == []
  new.optim.d.clip = 0.03
  assert C.incompatible_fields(old, C.config_to_dict(new)) == ["optim.d.clip"]


def test_resume_policy_comes_from_the_schema():
  a = C.config_to_dict(C.default_config())
  b = C.default_config()
  b.train.steps, b.eval.metrics, b.sample.grid_size = 5, "fd", 9
  assert C.incompatible_fields(a, C.config_to_dict(b)) == []
  b.loss, b.model.mlp.g_widths = "hinge", (8,)
  assert C.incompatible_fields(a, C.config_to_dict(b)) == ["loss", "model.mlp.g_widths"]


def test_describe_lists_every_field():
  table = C.describe()
  for k in C.all_fields():
    assert f"| `{k}` |" in table
  with pytest.raises(KeyError):
    C.get_field(C.default_config(), "train.stepz")


def test_readme_field_table_is_the_schema():
  """README.md's field table is generated from the schema; regenerate it when this fails:
  python -m tools.readme_fields"""
  from tools import readme_fields
  with open(readme_fields.README) as f:
    table = readme_fields.table_in(f.read())
  assert table == C.describe()
  assert table.count("\n| `") == len(C.all_fields())


def test_a_variant_with_steps_compresses_its_schedules_to_them():
  """`configs/r3gan2.py:fashion,1800` and `sngan.py:fashion_dcgan,24000`: the run and every
  schedule that follows its length take the given number of steps; bad STEPS are refused."""
  from configs import r3gan2, sngan
  base, short = r3gan2.get_config("fashion"), r3gan2.get_config("fashion,1800")
  assert (base.train.steps, short.train.steps) == (1000, 1800)
  assert [s["steps"] for s in base.schedules] == [1000] * len(base.schedules)
  assert [s["steps"] for s in short.schedules] == [1800] * len(short.schedules)
  dc = sngan.get_config("fashion_dcgan_cond,24000")
  assert dc.train.steps == 24000 and {s["steps"] for s in dc.schedules} == {24000}
  assert dc.model.conditioning == "projection"
  # the CIFAR-10 preset's EDM2 learning rate keeps its reference length in images
  assert r3gan2.get_config("cifar10,100").schedules[0]["steps"] == 1000
  with pytest.raises(ValueError, match=r"STEPS after the comma must be an integer >= 1"):
    r3gan2.get_config("fashion,0")
  with pytest.raises(ValueError, match=r"variant 'fashion' takes no ',STEPS'"):
    sngan.get_config("fashion,500")
  with pytest.raises(ValueError, match=r"Unknown r3gan2.py variant 'fahsion'"):
    r3gan2.get_config("fahsion,500")
