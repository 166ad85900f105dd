"""Sweeps: trial expansion, resumable sequential runs, vmapped populations, the report."""
import csv
import os

import chex
import jax
import numpy as np
import pytest

from jaxgan.run import population, sweep, train
from jaxgan.core import state as state_lib
from tests.conftest import tiny_config


def test_grid_and_zip_expand_to_the_right_trials():
  g = sweep.product(**{"optim.d.lr": [1e-4, 2e-4], "seed": [0, 1, 2]})
  assert len(g) == 6 and g[0] == {"optim.d.lr": 1e-4, "seed": 0}
  assert g[-1] == {"optim.d.lr": 2e-4, "seed": 2}
  assert sweep.zip_(a=[1, 2], b=[3, 4]) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
  with pytest.raises(ValueError, match="one length"):
    sweep.zip_(a=[1], b=[1, 2])
  assert sweep.seeds(sweep.parse_seeds("0,1,3")) == [{"seed": 0}, {"seed": 1}, {"seed": 3}]
  assert sweep.trial_name({"optim.d.lr": 0.0001, "seed": 2}) == "optim.d.lr=0.0001,seed=2"
  assert sweep.group_name({"optim.d.lr": 0.0001, "seed": 2}) == "optim.d.lr=0.0001"


def test_config_files_define_sweeps():
  trials = sweep.load_trials("configs/wgan_gp.py")
  assert len(trials) == 8 and {"optim.d.lr", "penalty_weight", "seed"} == set(trials[0])
  with pytest.raises(ValueError, match="defines no sweep"):
    sweep.load_trials("configs/dcgan.py")
  with pytest.raises(ValueError, match="does not exist"):
    sweep.apply(tiny_config(), {"optim.d.lrr": 1.0})


def test_sequential_sweep_skips_finished_trials(tmp_path):
  trials = sweep.seeds([0, 1])
  said = []
  sweep.run_sequential(tiny_config(), trials, str(tmp_path), log=said.append)
  assert sorted(os.listdir(tmp_path)) == ["seed=0", "seed=1"]
  said.clear()
  sweep.run_sequential(tiny_config(), trials, str(tmp_path), log=said.append)
  assert all("finished, skipped" in s for s in said) and len(said) == 2
  out = sweep.summarize(str(tmp_path), trials, log=said.append)
  rows = list(csv.DictReader(open(out["csv"])))
  assert [r["trial"] for r in rows] == ["seed=0", "seed=1"] and rows[0]["step"] == "6"
  md = open(out["md"]).read()
  assert "| base | 2 |" in md and "±" in md and os.path.exists(out["png"])


def test_shards_cover_every_trial_once_and_the_last_part_writes_the_table(tmp_path):
  trials = sweep.seeds([0, 1, 2, 3])
  parts = [sweep.select(trials, num_shards=3, shard_index=k) for k in range(3)]
  assert [[i for i, _ in p] for p in parts] == [[0, 3], [1], [2]]
  assert sweep.select(trials, trial_index=2) == [(2, {"seed": 2})]
  c = tiny_config(**{"train.sample_every": 0})
  for k, part in enumerate(parts):
    said = []
    out = sweep.run(c, trials, str(tmp_path), indices=[i for i, _ in part], log=said.append)
    trained = sorted(n for n in os.listdir(tmp_path) if n.startswith("seed="))
    assert trained == [f"seed={s}" for s in sorted(i for p in parts[:k + 1] for i, _ in p)]
    if k < 2:   # not every trial finished: no table yet, and the message says so
      assert out is None and "of 4 trials" in said[-1]
      assert not os.path.exists(tmp_path / "sweep.csv")
  rows = list(csv.DictReader(open(out["csv"])))
  assert [r["trial"] for r in rows] == [f"seed={s}" for s in range(4)]
  assert all(r["step"] == "6" for r in rows)
  # Every trial ran once: a part run again finds its trials finished.
  said = []
  sweep.run(c, trials, str(tmp_path), indices=[0, 3], log=said.append)
  assert sum("finished, skipped" in s for s in said) == 2


def test_collect_tables_the_trials_with_metrics(tmp_path):
  trials = sweep.seeds([0, 1, 2])
  c = tiny_config(**{"train.sample_every": 0})
  with pytest.raises(ValueError, match="none of the 3 trials"):
    sweep.run(c, trials, str(tmp_path), collect=True)
  sweep.run(c, trials, str(tmp_path), indices=[1])
  said = []
  out = sweep.run(c, trials, str(tmp_path), collect=True, log=said.append)
  assert "1 of 3 trials finished" in said[0]
  assert [r["trial"] for r in csv.DictReader(open(out["csv"]))] == ["seed=1"]


def params_close(a, b, tol):
  chex.assert_trees_all_close(a, b, rtol=tol, atol=tol)


def test_population_matches_separate_runs_and_is_reproducible(tmp_path):
  c = tiny_config(**{"train.steps": 3, "train.log_every": 1, "train.checkpoint_every": 3})
  trials = [{"seed": 0}, {"seed": 1, "optim.d.lr": 1e-3}]
  pop = train.train_and_evaluate(c, str(tmp_path / "pop"), trials=trials)
  for i, t in enumerate(trials):
    alone = train.train_and_evaluate(sweep.apply(c, t), str(tmp_path / f"alone{i}"))
    params_close(population.unstack(pop, i).g.params, alone.g.params, 1e-5)
    params_close(population.unstack(pop, i).d.params, alone.d.params, 1e-5)
  again = train.train_and_evaluate(c, str(tmp_path / "pop2"), trials=trials)
  chex.assert_trees_all_equal(pop, again)
  # Each member is an ordinary run: it can be restored and sampled alone.
  _, _, member = train.restore_for_sampling(str(tmp_path / "pop" / "seed=1,optim.d.lr=0.001"))
  params_close(member.g.params, population.unstack(pop, 1).g.params, 0)
  assert os.path.exists(tmp_path / "pop" / "seed=0" / "metrics.jsonl")


def test_population_members_use_their_own_hyperparameters(tmp_path):
  c = tiny_config(**{"train.steps": 2, "train.log_every": 1, "train.checkpoint_every": 2})
  trials = [{"optim.g.lr": 0.0}, {"optim.g.lr": 1e-3}]
  pop = train.train_and_evaluate(c, str(tmp_path), trials=trials)
  _, init = state_lib.create(c, (28, 28, 1), 10)
  frozen, moved = population.unstack(pop, 0), population.unstack(pop, 1)
  params_close(frozen.g.params, init.g.params, 0)            # lr 0: G never moved
  assert not np.allclose(jax.tree.leaves(moved.g.params)[0], jax.tree.leaves(init.g.params)[0])


def test_population_refuses_fields_that_change_the_program():
  with pytest.raises(ValueError, match="model.latent_dim"):
    population.check([{"model.latent_dim": 8}, {"model.latent_dim": 16}])


def test_unrolled_population_equals_the_vmapped_one(tmp_path):
  c = tiny_config(**{"train.steps": 2, "train.log_every": 1, "train.checkpoint_every": 2})
  trials = [{"seed": 0}, {"seed": 3, "penalty_weight": 5.0}]
  vm = train.train_and_evaluate(c, str(tmp_path / "v"), trials=trials)
  c.train.population_mode = "unroll"
  un = train.train_and_evaluate(c, str(tmp_path / "u"), trials=trials)
  params_close(un.g.params, vm.g.params, 1e-5)
  params_close(un.d.params, vm.d.params, 1e-5)
  c.train.population_mode = "loop"
  with pytest.raises(ValueError, match="vmap, unroll"):
    train.train_and_evaluate(c, str(tmp_path / "x"), trials=trials)
