"""Regularizers as a list: resolution, lazy scaling, sides, state (path length)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import regularizers as R
from jaxgan.core import state as state_lib, train_step as ts
from jaxgan.run import train
from jaxgan.core.regularizers import path_length
from tests.conftest import tiny_config


def test_list_and_penalty_shorthand_resolve_to_entries():
  c = tiny_config(**{"regularizers": ({"name": "r1", "weight": 5.0, "every": 16},
                                      "path_length"),
                     "penalty": "gp", "penalty_weight": 3.0})
  got = {e.name: (e.weight, e.every, e.side, e.stream) for e in R.resolve(c)}
  assert got == {"r1": (5.0, 16, "d", "reg/r1"), "path_length": (2.0, 1, "g", "reg/path_length"),
                 "gp": (3.0, 1, "d", "penalty")}
  assert R.resolve(tiny_config(**{"penalty": "clip"})) == []  # clip is a projection


@pytest.mark.parametrize("entry,match", [
    ({"name": "r3"}, "unknown regularizer 'r3'; valid: bcr, dragan, gp, lecam, orthogonal, "
                     "path_length, r1"),
    ({"name": "r1", "weight": -1.0}, "'weight' of 'r1' must be >= 0"),
    ({"weight": 1.0}, "needs a 'name'"),
    ({"name": "r1", "decay": 0.1}, "no option\\(s\\) decay; valid keys: name, weight, every, side"),
    ({"name": "r1", "side": "g"}, "acts on side\\(s\\) d, not 'g'"),
    ({"name": "path_length", "every": 0}, "'every' of 'path_length' must be >= 1"),
])
def test_bad_entries_are_refused(entry, match):
  with pytest.raises(ValueError, match=match):
    R.resolve(tiny_config(**{"regularizers": (entry,)}))


def test_auto_weight_is_stylegan2_adas_heuristic_gamma(tmp_path, caplog):
  """'auto' = 0.0002 x res^2 / batch (StyleGAN2-ADA's cfg 'auto'), in the train state's
  weight and in the run's log; only for r1/r2."""
  c = tiny_config(**{"regularizers": ({"name": "r1", "weight": "auto"},),
                     "data.image_size": 32, "data.batch_size": 64})
  (e,) = R.resolve(c)
  assert e.auto and e.weight == pytest.approx(0.0002 * 32 ** 2 / 64) == pytest.approx(0.0032)
  assert R.auto_gamma((256, 512), 32) == pytest.approx(0.0002 * 256 * 512 / 32)
  with pytest.raises(ValueError, match="'auto' is StyleGAN2-ADA's R1 heuristic, for r1 and "
                     "r2 only, not 'gp'"):
    R.resolve(tiny_config(**{"regularizers": ({"name": "gp", "weight": "auto"},)}))
  with pytest.raises(ValueError, match="must be a number or 'auto'.*got 'ten'"):
    R.resolve(tiny_config(**{"regularizers": ({"name": "r1", "weight": "ten"},)}))
  c = tiny_config(**{"regularizers": ({"name": "r1", "weight": "auto"},), "train.steps": 1,
                     "train.sample_every": 0})
  with caplog.at_level("INFO"):
    state = train.train_and_evaluate(c, str(tmp_path / "r"))
  assert float(state.hparams["reg/r1"]) == pytest.approx(0.0002 * 28 ** 2 / 16)
  assert any("weight 'auto' = 0.0002 x 28 x 28 / 16 = 0.0098" in r.getMessage()
             for r in caplog.records)


def test_the_same_regularizer_twice_is_refused():
  with pytest.raises(ValueError, match="r1 listed twice"):
    R.resolve(tiny_config(**{"regularizers": ("r1",), "penalty": "r1"}))


def _step(c):
  gan, state = state_lib.create(c, (28, 28, 1), 0)
  rng = np.random.RandomState(0)
  batch = {"images": rng.randint(0, 256, (c.train.n_critic, 16, 28, 28, 1)).astype(np.uint8)}
  return state, jax.jit(ts.make_train_step(gan, c)), batch


def test_lazy_regularizer_runs_every_k_updates_with_weight_times_k():
  every = 3
  lazy = tiny_config(**{"regularizers": ({"name": "r1", "weight": 0.5, "every": every},)})
  eager = tiny_config(**{"regularizers": ({"name": "r1", "weight": 0.5},)})
  s_l, step_l, batch = _step(lazy)
  s_e, step_e, _ = _step(eager)
  for i in range(4):
    _, m_l = step_l(s_l.replace(step=jnp.int32(i)), batch)
    _, m_e = step_e(s_e.replace(step=jnp.int32(i)), batch)
    if i % every == 0:  # the same term, scaled by k, in the loss
      assert float(m_l["d_r1"]) == pytest.approx(every * float(m_e["d_r1"]), rel=1e-5)
      assert float(m_l["d_loss"]) == pytest.approx(
          float(m_e["d_adv_loss"]) + 0.5 * every * float(m_e["d_r1"]), rel=1e-5)
    else:
      assert float(m_l["d_r1"]) == 0.0
      assert float(m_l["d_loss"]) == pytest.approx(float(m_l["d_adv_loss"]), rel=1e-6)


def test_path_lengths_of_a_linear_generator_in_closed_form():
  a = jax.random.normal(jax.random.PRNGKey(0), (4 * 4 * 2, 3))
  generate = lambda z: (z @ a.T).reshape(z.shape[0], 4, 4, 2)
  z = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
  key = jax.random.PRNGKey(2)
  lengths, images = path_length.path_lengths(generate, z, key)
  y = np.asarray(jax.random.normal(key, images.shape)) / 4.0  # sqrt(H*W) = 4
  want = np.linalg.norm(y.reshape(5, -1) @ np.asarray(a), axis=1)  # ||A^T y||
  np.testing.assert_allclose(lengths, want, rtol=1e-5)


def test_path_length_state_moves_by_its_decay_and_survives_resume(tmp_path):
  c = tiny_config(**{"regularizers": ({"name": "path_length", "every": 2},)})
  s0, step, batch = _step(c)
  assert float(s0.reg["path_length"]["mean"]) == 0.0
  s1, m1 = step(s0, batch)   # step 0: runs (0 % 2 == 0)
  # E[a] after one update from 0 with decay 0.01: mean = 0.01 * E[a] > 0
  assert float(s1.reg["path_length"]["mean"]) > 0 and float(m1["g_path_length"]) > 0
  s2, m2 = step(s1, batch)   # step 1: skipped, state unchanged
  assert float(s2.reg["path_length"]["mean"]) == float(s1.reg["path_length"]["mean"])
  assert float(m2["g_path_length"]) == 0.0
  full = train.train_and_evaluate(tiny_config(**{**_pl(), "train.steps": 6}), str(tmp_path / "a"))
  train.train_and_evaluate(tiny_config(**{**_pl(), "train.steps": 3}), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(tiny_config(**{**_pl(), "train.steps": 6}),
                                     str(tmp_path / "b"))
  assert float(full.reg["path_length"]["mean"]) > 0
  assert float(full.reg["path_length"]["mean"]) == float(resumed.reg["path_length"]["mean"])
  pop = train.train_and_evaluate(tiny_config(**{**_pl(), "train.steps": 2}),
                                 str(tmp_path / "p"), trials=[{"seed": 0}, {"seed": 1}])
  assert pop.reg["path_length"]["mean"].shape == (2,)


def _pl():
  return {"regularizers": ({"name": "path_length", "every": 2},),
          "train.checkpoint_every": 3, "train.sample_every": 0}


def test_a_step_compiled_per_lazy_pattern_equals_the_lax_cond_step():
  c = tiny_config(**{"train.n_critic": 2, "regularizers": (
      {"name": "r1", "every": 3}, {"name": "path_length", "every": 2})})
  state, cond_step, batch = _step(c)
  gan = state_lib.create(c, (28, 28, 1), 0)[0]
  step = ts.TrainStep(gan, c)
  assert step.lazy_pattern(0) == (("d", 0, "r1"), ("g", 0, "path_length"))
  assert step.lazy_pattern(1) == (("d", 1, "r1"),)    # D update 3 = step 1, i 1
  assert step.lazy_pattern(2) == (("g", 0, "path_length"),)   # D updates 4, 5: none
  assert step.lazy_pattern(3) == (("d", 0, "r1"),)
  static = {p: jax.jit(functools.partial(step, pattern=p)) for p in map(step.lazy_pattern,
                                                                       range(4))}
  a = b = state
  for i in range(4):
    a, ma = cond_step(a, batch)
    b, mb = static[step.lazy_pattern(i)](b, batch)
    for k in ("d_r1", "g_path_length", "d_loss", "g_loss"):
      assert float(ma[k]) == pytest.approx(float(mb[k]), rel=1e-5, abs=1e-7), (i, k)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6),
               a.g.params, b.g.params)
  assert float(a.reg["path_length"]["mean"]) == pytest.approx(
      float(b.reg["path_length"]["mean"]), rel=1e-5)
