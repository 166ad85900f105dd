"""`config.task='autoencoder'` (jaxgan/run/autoencoder.py): its loss, a few steps on the
embedded images, the exported diffusers directory, bit-exact resume, and bad settings."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import autoencoder as ae_configs
from jaxgan.base.errors import UserError
from jaxgan.pretrained import autoencoder_files as files
from jaxgan.pretrained import autoencoder_kl as ae
from jaxgan.run import autoencoder as trainer
from tests.conftest import set_fields


def tiny_ae(**overrides):
  c = ae_configs.get_config("fashion")
  c.data.name, c.data.max_examples, c.data.image_size, c.data.batch_size = "", 64, 8, 8
  c.autoencoder.block_out_channels, c.autoencoder.norm_num_groups = (8, 8), 4
  c.autoencoder.scale_images = 32
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 4, 2, 2
  c.checkpoint.async_save, c.train.tensorboard = False, False
  c.eval.classifier_steps, c.eval.max_real_features, c.eval.metrics = 20, 64, ""
  return set_fields(c, overrides)


def test_kl_term_equals_the_closed_form_of_two_gaussians():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
  sigma = rng.uniform(0.2, 2.0, size=mean.shape).astype(np.float32)
  # KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2, per element
  want = np.sum(-np.log(sigma) + (sigma ** 2 + mean ** 2) / 2 - 0.5, axis=(1, 2, 3))
  got = trainer.kl_to_standard_normal(jnp.asarray(mean), jnp.asarray(2 * np.log(sigma)))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_loss_weights_combine_per_image_sums():
  cfg = ae.AEConfig(in_channels=1, out_channels=1, block_out_channels=(8, 8),
                    layers_per_block=1, norm_num_groups=4)
  model = ae.create(cfg, 0)
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 1)), jnp.float32)
  key = jax.random.key(3)
  loss = jax.jit(lambda w: trainer.loss_fn(model, x, key, w))
  parts = {}
  for name in ("l1", "l2", "kl"):
    w = {"l1": 0.0, "l2": 0.0, "kl": 0.0, name: 1.0}
    parts[name] = float(loss(w)[0])
  total, aux = loss({"l1": 2.0, "l2": 3.0, "kl": 0.5})
  np.testing.assert_allclose(float(total), 2 * parts["l1"] + 3 * parts["l2"] + 0.5 * parts["kl"],
                             rtol=1e-5)
  np.testing.assert_allclose(float(aux["l1"]), parts["l1"] / 64, rtol=1e-5)


def test_a_short_run_exports_a_directory_that_loads_like_a_downloaded_vae(tmp_path):
  c = tiny_ae(**{"eval.metrics": "fd"})
  result = trainer.train(c, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["loss"]) for r in rows)
  model, sha = files.load(str(tmp_path / "autoencoder"))
  assert sha == result["weights_sha256"]
  # the exported factors standardise the latent means of the scale_images images
  all_imgs = trainer.data_lib.open_data(c.data, 0, 1, say=lambda *_: None).images
  data_imgs = all_imgs[np.unique(np.linspace(0, len(all_imgs) - 1, 32).astype(np.int64))]
  z = np.asarray(model.moments(trainer.to_float(data_imgs))[0])
  np.testing.assert_allclose(float(np.asarray(model.scale(z)).mean()), 0.0, atol=1e-4)
  np.testing.assert_allclose(float(np.asarray(model.scale(z)).std()), 1.0, rtol=1e-4)
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = subprocess.run([sys.executable, os.path.join(root, "launch.py"), "--workdir",
                      str(tmp_path), "--mode", "sample"], capture_output=True, text=True,
                     cwd=root)
  assert r.returncode == 2 and "holds an autoencoder run" in r.stderr.strip().splitlines()[-1]
  ev = json.load(open(tmp_path / "autoencoder_eval.json"))
  assert ev["fd_reconstructions"] > ev["fd_compared_images"] >= 0
  assert os.path.exists(tmp_path / "reconstructions.png")


def _params(workdir):
  model, _ = files.load(os.path.join(workdir, "autoencoder"))
  return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_resume_continues_bit_exactly(tmp_path):
  trainer.train(tiny_ae(), str(tmp_path / "straight"))
  trainer.train(tiny_ae(**{"train.steps": 2}), str(tmp_path / "resumed"))
  trainer.train(tiny_ae(), str(tmp_path / "resumed"))
  for a, b in zip(_params(tmp_path / "straight"), _params(tmp_path / "resumed")):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_autoencoder_settings_are_one_line_errors(tmp_path):
  with pytest.raises(UserError, match=r"config.data.image_size=10: an autoencoder of 3 "
                                      r"levels halves it 2 times, so each side must be a "
                                      r"multiple of 4"):
    trainer.train(tiny_ae(**{"data.image_size": 10,
                             "autoencoder.block_out_channels": (8, 8, 8)}), str(tmp_path / "a"))
  with pytest.raises(UserError, match=r"norm_num_groups=3 does not divide the width\(s\) "
                                      r"\[8, 8\]"):
    trainer.train(tiny_ae(**{"autoencoder.norm_num_groups": 3}), str(tmp_path / "b"))
  with pytest.raises(UserError, match=r"autoencoder.block_out_channels.*positive integers"):
    trainer.train(tiny_ae(**{"autoencoder.block_out_channels": (8, 0)}), str(tmp_path / "c"))
