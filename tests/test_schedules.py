"""Schedules (jaxgan/core/schedules.py): values at chosen steps against the closed forms, what the
train step does with them (optimizer hyperparameters, regularizer weights, the EMA
half-life), bit-exact resume in the middle of a schedule, and refused entries."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import schedules
from jaxgan.run import train, validate
from jaxgan.base.errors import UserError
from tests.conftest import tiny_config
from tests.test_regularizers import _step


@pytest.mark.parametrize("step,linear,cosine", [
    (0, 2e-4, 2e-4), (25, 2e-4 - 0.25 * 1.5e-4, 2e-4 - (1 - math.cos(math.pi / 4)) / 2 * 1.5e-4),
    (50, 1.25e-4, 1.25e-4), (100, 5e-5, 5e-5), (250, 5e-5, 5e-5)])
def test_values_at_chosen_steps(step, linear, cosine):
  # R3GAN's learning rate: 2e-4 -> 5e-5 (here over 100 steps), then held
  assert float(schedules.value_at("linear", 2e-4, 5e-5, 100, step)) == pytest.approx(linear)
  assert float(schedules.value_at("cosine", 2e-4, 5e-5, 100, step)) == pytest.approx(cosine)


def test_the_step_uses_the_scheduled_values():
  c = tiny_config(**{
      "regularizers": ({"name": "r1", "weight": 1.0},),
      "schedules": ({"target": "optim.g.lr", "kind": "linear", "end": 1e-4, "steps": 4},
                    {"target": "optim.d.b2", "kind": "cosine", "end": 0.99, "steps": 2},
                    {"target": "regularizers.r1", "kind": "linear", "end": 0.0, "steps": 2})})
  c.optim.d.b2 = 0.9
  state, step, batch = _step(c)
  seen = []
  for _ in range(3):
    before = state
    state, m = step(state, batch)
    seen.append((float(m["lr_g"]), float(m["b2_d"]), float(m["r1_weight"]), float(m["d_r1"]),
                 float(m["d_adv_loss"]), float(m["d_loss"])))
    # the optimizer states hold the values the update used
    assert float(state.g.opt_state.hyperparams["learning_rate"]) == pytest.approx(seen[-1][0])
    assert float(state.d.opt_state.hyperparams["b2"]) == pytest.approx(seen[-1][1])
    assert float(before.hparams["sched/optim.g.lr"]) == pytest.approx(2e-4)  # start kept
  np.testing.assert_allclose([s[0] for s in seen], [2e-4, 1.75e-4, 1.5e-4], rtol=1e-6)
  np.testing.assert_allclose([s[1] for s in seen], [0.9, 0.945, 0.99], rtol=1e-6)
  np.testing.assert_allclose([s[2] for s in seen], [1.0, 0.5, 0.0], atol=1e-7)
  for lr, b2, w, r1, adv, total in seen:  # the weighted term in D's loss
    assert total == pytest.approx(adv + w * r1, rel=1e-5, abs=1e-6)


def test_a_schedule_of_adas_p_replaces_its_adaptation():
  sched = ({"target": "augment.p", "kind": "linear", "end": 1.0, "steps": 2},)
  c = tiny_config(**{"augment.policy": "ada", "augment.ada_target": 0.0, "augment.p": 0.0,
                      "schedules": sched})
  state, step, batch = _step(c)
  ps = []
  for _ in range(3):
    state, m = step(state, batch)
    ps.append(float(m["augment_p"]))
  np.testing.assert_allclose(ps, [0.0, 0.5, 1.0], atol=1e-7)
  adaptive = tiny_config(**{"augment.policy": "ada", "schedules": sched})
  with pytest.raises(UserError, match="ada_target=0"):
    validate.validate(adaptive)


def test_ema_half_life():
  h0 = tiny_config(**{"ema_halflife_kimg": 0.0,
                      "schedules": ({"target": "ema_halflife_kimg", "end": 1.0, "steps": 10},)})
  state, step, batch = _step(h0)
  new, _ = step(state, batch)   # half-life 0 at step 0: the EMA copies G's weights
  for a, b in zip(jax.tree.leaves(new.ema), jax.tree.leaves(new.g.params)):
    np.testing.assert_array_equal(a, b)
  fixed = tiny_config(**{"ema_halflife_kimg": 0.5})
  state, step, batch = _step(fixed)
  new, _ = step(state, batch)
  decay = 0.5 ** (16 / 500)     # batch 16, half-life 500 images
  for e0, g1, e1 in zip(jax.tree.leaves(state.ema), jax.tree.leaves(new.g.params),
                        jax.tree.leaves(new.ema)):
    np.testing.assert_allclose(e1, decay * e0 + (1 - decay) * g1, rtol=1e-5, atol=1e-7)


def test_resume_in_the_middle_of_a_schedule_is_bit_exact(tmp_path):
  sched = ({"target": "optim.d.lr", "kind": "cosine", "end": 5e-5, "steps": 8},
           {"target": "ema_halflife_kimg", "kind": "linear", "end": 0.2, "steps": 8})
  c = lambda steps: tiny_config(**{"train.steps": steps, "schedules": sched})
  full = train.train_and_evaluate(c(6), str(tmp_path / "a"))
  train.train_and_evaluate(c(3), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(c(6), str(tmp_path / "b"))
  assert float(full.d.opt_state.hyperparams["learning_rate"]) == pytest.approx(
      float(schedules.value_at("cosine", 2e-4, 5e-5, 8, 5)))
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("entry,match", [
    ({"target": "optim.g.lrr", "end": 1e-4, "steps": 10}, "not schedulable; valid targets"),
    ({"target": "optim.g.lr", "end": -1e-4, "steps": 10}, "out of range"),
    ({"target": "optim.g.lr", "end": 1e-4, "steps": 0}, "'steps' must be >= 1"),
    ({"target": "optim.g.lr", "kind": "cosin", "end": 1e-4, "steps": 10}, "valid kinds"),
    ({"target": "optim.g.lr", "end": 1e-4}, "missing \\['steps'\\]"),
    ({"target": "regularizers.r1", "end": 1.0, "steps": 10}, "no regularizer 'r1'"),
    ({"target": "optim.g.b2", "end": 0.99, "steps": 10, "lr": 1}, "unknown key"),
])
def test_bad_entries_are_refused_with_the_fix(entry, match):
  with pytest.raises(UserError, match=match):
    validate.validate(tiny_config(**{"schedules": (entry,)}))


def test_beta2_needs_adam_and_targets_are_listed_once():
  c = tiny_config(**{"schedules": ({"target": "optim.d.b2", "end": 0.99, "steps": 5},)})
  c.optim.d.name = "rmsprop"
  with pytest.raises(UserError, match="beta2 is Adam's"):
    validate.validate(c)
  twice = ({"target": "optim.d.lr", "end": 1e-4, "steps": 5},) * 2
  with pytest.raises(UserError, match="listed twice"):
    validate.validate(tiny_config(**{"schedules": twice}))
  assert jnp.isfinite(schedules.value_at("cosine", 0.0, 1.0, 3, 10**9))


@pytest.mark.parametrize("step", [0, 1, 500, 977, 1000, 1953, 4000, 40000])
def test_r3gan2_and_edm2_learning_rates(step):
  """R3GAN2 (IFeelBloated/R3GAN2@3b04752d, train.py): cosine 1e-2 -> 1e-3 over T, then
  1e-3 / sqrt(t / T); EDM2 (its CIFAR-10 preset): 1e-2 / sqrt(max(t / t_ref, 1)) x
  min(t / t_rampup, 1), t_ref = 1000 steps of 512 images, ramp-up 1e6 images."""
  T = 4000
  cos = 1e-2 + (1e-3 - 1e-2) * (1 - math.cos(math.pi * min(step / T, 1))) / 2
  want = cos if step <= T else 1e-3 / math.sqrt(step / T)
  assert float(schedules.value_at("cosine_rsqrt", 1e-2, 1e-3, T, step)) == pytest.approx(
      want, rel=1e-5)
  ramp = round(1e6 / 512)
  want = 1e-2 / math.sqrt(max(step / 1000, 1)) * min(step / ramp, 1)
  assert float(schedules.value_at("edm2", 1e-2, 0.0, 1000, step, ramp)) == pytest.approx(
      want, rel=1e-5, abs=1e-12)


def test_edm2_entries_need_no_end_and_resume_bit_exactly(tmp_path):
  sched = ({"target": "optim.g.lr", "kind": "edm2", "steps": 2, "warmup": 3},
           {"target": "optim.d.lr", "kind": "cosine_rsqrt", "end": 1e-4, "steps": 2})
  c = lambda steps: tiny_config(**{"train.steps": steps, "schedules": sched})
  full = train.train_and_evaluate(c(6), str(tmp_path / "a"))
  train.train_and_evaluate(c(3), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(c(6), str(tmp_path / "b"))
  # the last update (step 5) ran with lr 2e-4 / sqrt(5 / 2), ramp-up done
  assert float(full.g.opt_state.hyperparams["learning_rate"]) == pytest.approx(
      2e-4 / math.sqrt(5 / 2), rel=1e-5)
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    assert np.array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(UserError, match=r"config.schedules\[0\].*'warmup' >= 0"):
    schedules.resolve(tiny_config(**{"schedules": (
        {"target": "optim.g.lr", "kind": "edm2", "steps": 2, "warmup": -1},)}))
