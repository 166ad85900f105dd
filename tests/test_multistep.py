"""Many steps per compiled call (train.steps_per_call).

What holds on every CPU, and is tested here: a run with K steps per call equals the same
run with one step per call to float32 rounding (scanned or unrolled), and a run resumed
at a multiple of K with the same K is bit-identical to the uninterrupted run (the same
compiled programs see the same inputs). Bit-identity between K and 1 is not promised:
XLA compiles a step inside the call's loop in another context than a step alone, and on
jax 0.12.1 (on AVX-512 and on AVX2-only CPUs alike) and on jax 0.10.2 with AVX2 it fuses
and rounds some reductions differently in the last bit, which a few training steps
amplify to ~1e-6 relative."""
import json
import os

import chex
import pytest

from configs import wgan_gp as wgan_gp_cfg
from jaxgan.core import multistep
from jaxgan.run import train, validate
from tests.conftest import set_fields, tiny_config

EVERY = {"train.log_every": 4, "train.checkpoint_every": 4, "train.sample_every": 0,
         "train.tensorboard": False}


def rows(workdir):
  """metrics.jsonl without the wall-clock rate."""
  out = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in out]


def close_rows(a, b):
  assert [sorted(r) for r in a] == [sorted(r) for r in b]
  for ra, rb in zip(a, b):
    for k in ra:
      assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-5), k


def small_wgan_gp(**overrides):
  """configs/wgan_gp.py at width 8: convolutions (oneDNN on CPU), a gradient penalty,
  two critic updates, and a lazy R1 on top (one compiled pattern per step)."""
  c = wgan_gp_cfg.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  c.model.latent_dim, c.data.batch_size, c.data.max_examples = 8, 8, 64
  c.train.n_critic, c.train.progress, c.checkpoint.async_save = 2, False, False
  c.eval.every = 0
  c.regularizers = ({"name": "r1", "weight": 1.0, "every": 3},)
  return set_fields(c, {**EVERY, **overrides})


def tiny(**overrides):
  return tiny_config(**{**EVERY, **overrides})


@pytest.mark.parametrize("make,loops", [(tiny, ("auto",)), (small_wgan_gp, ("auto", "unroll"))])
def test_k_steps_per_call_equal_one_step_per_call(tmp_path, make, loops):
  one = train.train_and_evaluate(make(**{"train.steps": 8}), str(tmp_path / "one"))
  for loop in loops:   # the one-step run is made once for both call loops
    many = train.train_and_evaluate(
        make(**{"train.steps": 8, "train.steps_per_call": 4, "train.call_loop": loop}),
        str(tmp_path / loop))
    chex.assert_trees_all_close(one, many, rtol=1e-5, atol=1e-6)  # weights, optimizer states
    close_rows(rows(tmp_path / "one"), rows(tmp_path / loop))
    assert [r["step"] for r in rows(tmp_path / loop)] == [4, 8]


def test_resume_at_a_multiple_of_k_with_the_same_k_is_bit_identical(tmp_path):
  """Convolutions, a gradient penalty and a lazy R1: the calls 0-4 and 4-8 compile to the
  same programs whether or not the run stopped at 4, so the bits agree on any CPU."""
  k4 = {"train.steps_per_call": 4}
  full = train.train_and_evaluate(small_wgan_gp(**{**k4, "train.steps": 8}),
                                  str(tmp_path / "full"))
  wd = str(tmp_path / "parts")
  train.train_and_evaluate(small_wgan_gp(**{**k4, "train.steps": 4}), wd)
  resumed = train.train_and_evaluate(small_wgan_gp(**{**k4, "train.steps": 8}), wd)
  chex.assert_trees_all_equal(full, resumed)
  assert rows(tmp_path / "full") == rows(wd)


def test_resume_with_another_steps_per_call_continues_the_run(tmp_path):
  full = train.train_and_evaluate(tiny_config(**{**EVERY, "train.steps": 12}),
                                  str(tmp_path / "full"))
  wd = str(tmp_path / "parts")
  part = train.train_and_evaluate(
      tiny_config(**{**EVERY, "train.steps": 6, "train.steps_per_call": 4}), wd)
  assert int(part.step) == 6           # calls 0-4, then 4-6 (the end)
  resumed = train.train_and_evaluate(   # from the checkpoint at 6: calls 6-8, 8-10, 10-12
      tiny_config(**{**EVERY, "train.steps": 12, "train.steps_per_call": 2}), wd)
  chex.assert_trees_all_close(full, resumed, rtol=1e-5, atol=1e-6)
  parts = rows(wd)    # the first invocation also logged its last step, 6, so its row at 8
  assert [r["step"] for r in parts] == [4, 6, 8, 12]     # averages steps 7-8 only
  close_rows([r for r in rows(tmp_path / "full") if r["step"] != 8],
             [r for r in parts if r["step"] not in (6, 8)])


def test_call_sizes_end_at_multiples_of_k():
  sizes, step = [], 6
  while step < 23:
    sizes.append(multistep.call_size(step, 4, 23))
    step += sizes[-1]
  assert sizes == [2, 4, 4, 4, 3]


def test_intervals_that_are_not_multiples_are_refused():
  c = tiny_config(**{"train.steps_per_call": 4, "train.log_every": 6})
  with pytest.raises(ValueError, match=r"config.train.log_every=6 is not a multiple of "
                                       r"config.train.steps_per_call=4.*\(e.g. 4\)"):
    validate.validate(c)
  c = tiny_config(**{"train.steps_per_call": 3, "train.log_every": 3,
                     "train.checkpoint_every": 3, "train.sample_every": 0})
  validate.validate(c)   # eval.every=0 and sample_every=0 (off) are multiples of anything
