"""Gradient accumulation (train.grad_accum) and rematerialisation (train.remat): the same
update as the full batch, to float32 rounding, where nothing is drawn or normalised per
batch; and the one-line answers to a batch that does not split or does not fit."""
import jax
import numpy as np
import pytest

from jaxgan.base.errors import UserError
from jaxgan.core import state as state_lib, train_step as ts
from jaxgan.run import train, validate
from tests.conftest import tiny_config


def _config(**over):
  # SGD, so that an update is -lr x the gradient itself; no augmentation, dropout,
  # BatchNorm or label noise: nothing random or batch-coupled besides z and the data
  return tiny_config(**{"optim.g.name": "sgd", "optim.d.name": "sgd", "optim.g.lr": 0.5,
                        "optim.d.lr": 0.5, "data.batch_size": 16, **over})


def _one_step(c):
  gan, state = state_lib.create(c, (28, 28, 1), 0)
  shape = (c.train.n_critic, 16, 28, 28, 1)
  images = np.random.RandomState(0).randint(0, 256, shape).astype(np.uint8)
  new, metrics = jax.jit(ts.make_train_step(gan, c))(state, {"images": images})
  moved = jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b),
                       (new.g.params, new.d.params), (state.g.params, state.d.params))
  return moved, metrics


@pytest.mark.parametrize("over", [
    {"loss": "non_saturating", "regularizers": ({"name": "r1", "weight": 1.0},)},
    {"loss": "rpgan", "regularizers": ({"name": "r1", "weight": 1.0},
                                       {"name": "r2", "weight": 1.0})},
    {"loss": "hinge", "train.n_critic": 2},
], ids=["ns_r1", "rpgan_r1_r2", "hinge_2_critic"])
def test_accumulated_update_equals_the_full_batchs(over):
  """Losses and penalties are means over examples (RpGAN's pairs stay paired), so the
  mean of 4 micro-batch gradients is the full batch's."""
  full, m_full = _one_step(_config(**over))
  acc, m_acc = _one_step(_config(**over, **{"train.grad_accum": 4}))
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(acc)):
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-7)
  assert float(np.abs(jax.tree.leaves(full)[0]).max()) > 1e-4    # the step moved weights
  np.testing.assert_allclose(m_acc["g_loss"], m_full["g_loss"], rtol=1e-5)
  assert m_acc["hist_d_real"].shape == m_full["hist_d_real"].shape == (16,)


def test_a_conditional_model_with_latent_terms_accumulates():
  """zCR regenerates from its micro-batch's z with that micro-batch's labels."""
  c = _config(**{"model.conditioning": "projection", "train.grad_accum": 4,
                 "regularizers": ({"name": "zcr"}, {"name": "zcr_g"})})
  gan, state = state_lib.create(c, (28, 28, 1), 10)
  rs = np.random.RandomState(0)
  batch = {"images": rs.randint(0, 256, (1, 16, 28, 28, 1)).astype(np.uint8),
           "labels": rs.randint(0, 10, (1, 16)).astype(np.int32)}
  _, m = jax.jit(ts.make_train_step(gan, c))(state, batch)
  assert np.isfinite(float(m["d_zcr"])) and float(m["d_zcr"]) > 0


def test_remat_gives_the_same_update():
  over = {"loss": "non_saturating", "regularizers": ({"name": "r1", "weight": 1.0},)}
  plain, _ = _one_step(_config(**over))
  remat, _ = _one_step(_config(**over, **{"train.remat": True, "train.grad_accum": 2}))
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-7)


def test_a_batch_that_does_not_split_is_refused():
  with pytest.raises(UserError, match=r"grad_accum=3 does not divide config.data.batch_size="
                     r"16 into equal micro-batches; use one of 1, 2, 4, 8, 16\."):
    validate.validate(_config(**{"train.grad_accum": 3}))


def test_running_out_of_memory_names_the_switches(tmp_path, monkeypatch):
  def oom(*a, **k):
    raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.1GiB.")
  monkeypatch.setattr(train.Run, "_call", oom)
  with pytest.raises(UserError) as e:
    train.train_and_evaluate(_config(**{"train.steps": 2}), str(tmp_path / "r"))
  assert str(e.value) == (
      "Out of device memory in the train step at config.data.batch_size=16 "
      "(train.grad_accum=1, train.remat=False); set --config.train.grad_accum=2 "
      "(micro-batches of 8, the same update) and/or --config.train.remat=True (G and D "
      "recomputed in the backward pass).")
  assert not train.out_of_memory(RuntimeError("INVALID_ARGUMENT: shapes differ"))
