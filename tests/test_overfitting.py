"""The held-out D probe (ADA paper fig. 1b): the images it uses and the values it logs."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.eval import overfitting
from jaxgan.core import state as state_lib
from jaxgan.run import train
from jaxgan.data import sources
from tests.conftest import tiny_config


def _data(n=200):
  rng = np.random.RandomState(0)
  return sources.ImageData(rng.randint(0, 256, (n, 28, 28, 1)).astype(np.uint8),
                           np.arange(n, dtype=np.int32) % 10, 10, "toy")


def test_a_subset_keeps_the_images_it_leaves_out_as_heldout():
  data = _data()
  sub = sources.take_subset(data, 50, seed=3)
  assert len(sub.images) == 50 and len(sub.heldout.images) == 150
  flat = lambda d: {img.tobytes() for img in d.images}
  assert not flat(sub) & flat(sub.heldout)                   # disjoint
  assert len(flat(sub) | flat(sub.heldout)) == 200            # together: the split
  again = sources.take_subset(data, 50, seed=3)
  assert np.array_equal(again.heldout.images, sub.heldout.images)
  assert sources.take_subset(data, 200, seed=3).heldout is None


def test_probe_values_are_d_means_on_its_two_batches():
  c = tiny_config()
  data = sources.take_subset(_data(), 50, seed=0)
  gan, state = state_lib.create(c, (28, 28, 1), 0)
  probe = overfitting.DiscriminatorProbe(gan, data, data.heldout, batch_size=16)
  out = probe(state)
  mean = lambda x: float(jnp.mean(gan.discriminate(
      state.d.params, state.d.stats, jnp.asarray(x, jnp.float32) / 127.5 - 1, None,
      train=False)[0]))
  assert out["d_real_heldout"] == pytest.approx(mean(data.heldout.images[:16]), rel=1e-5)
  assert out["d_real_train"] == pytest.approx(mean(np.asarray(probe.train[0])), rel=1e-5)
  assert out["d_real_gap"] == pytest.approx(out["d_real_train"] - out["d_real_heldout"])
  train_set = {img.tobytes() for img in data.images}
  assert all(img.tobytes() in train_set for img in np.asarray(probe.train[0]))


def test_a_run_on_a_subset_logs_the_probe_beside_the_training_metrics(tmp_path):
  c = tiny_config(**{"data.subset": 64, "train.sample_every": 0})
  train.train_and_evaluate(c, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  logged = [r for r in rows if "d_x" in r]
  assert logged and all({"d_real_train", "d_real_heldout", "d_real_gap"} <= set(r)
                        for r in logged)
  assert all(np.isfinite(r["d_real_gap"]) for r in logged)
