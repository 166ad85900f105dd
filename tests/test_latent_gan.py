"""GANs in a frozen autoencoder's latent space (jaxgan/core/latent_space.py): the real batch
each step draws, a few steps of R3GAN2 on latents whose grids, samples and metrics are
decoded images, bit-exact resume, and the refusals."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.base.errors import UserError
from jaxgan.core import latent_space
from jaxgan.data import prepare
from jaxgan.eval import sampling
from jaxgan.run import restore, train
from tests.conftest import tiny_config
from tests.test_latent_data import ENCODER, image_folder

FLUX1 = os.path.join(os.path.dirname(ENCODER), "flux1")


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
  root = tmp_path_factory.mktemp("latent_gan")
  out = root / "latents"
  assert prepare.main([str(image_folder(root / "images", n=32, size=32)), str(out),
                       "--encoder", ENCODER, "--size", "32"]) == 0
  return str(out)


def latent_config(folder, **over):
  return tiny_config(**{
      "model.arch": "r3gan2", "model.r3gan2.widths": (32,), "model.r3gan2.blocks": (1,),
      "loss": "rpgan", "optim.g.b1": 0.0, "optim.d.b1": 0.0,
      "data.folder": folder, "data.image_size": 32, "data.channels": 3,
      "data.max_examples": 0, "data.batch_size": 8, "train.steps": 4,
      "train.sample_every": 2, "sample.grid_size": 4, **over})


def test_the_real_batch_is_mean_plus_std_eps_normalised_per_channel():
  space = latent_space.LatentSpace((0.5, -1.0), (2.0, 4.0), "", "", (8, 8, 1))
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(3, 2, 2, 2)).astype(np.float32)
  std = rng.uniform(0.1, 1.0, size=mean.shape).astype(np.float32)
  key = jax.random.key(7)
  eps = np.asarray(jax.random.normal(key, mean.shape, jnp.float32))
  want = (mean + std * eps - np.array([0.5, -1.0])) / np.array([2.0, 4.0])
  np.testing.assert_allclose(space.draw(mean, std, key), want, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(space.denormalize(space.normalize(mean)), mean, atol=1e-6)


def test_the_norm_modes_take_their_statistics_from_the_manifest(latents):
  from jaxgan.data import records
  desc = records.latent_description(records.read_manifest(latents))
  ch = latent_space.from_description(desc, "channel")
  assert ch.shift == tuple(desc["channel_mean"]) and ch.scale == tuple(desc["channel_std"])
  ae = latent_space.from_description(desc, "autoencoder")
  assert ae.scale == (1 / 0.18215,) * 4 and ae.shift == (0.0,) * 4
  assert ch.image_shape == (32, 32, 3) and ch.decoder == os.path.abspath(ENCODER)


@pytest.fixture(scope="module")
def trained(latents, tmp_path_factory):
  """Four steps of R3GAN2 on the latents, evaluated (FD) at the end."""
  wd = tmp_path_factory.mktemp("latent_run")
  c = latent_config(latents, **{"eval.every": 4, "eval.metrics": "fd",
                                "eval.classifier_steps": 20, "eval.num_samples": 16})
  return str(wd), train.train_and_evaluate(c, str(wd))


def test_a_latent_run_trains_and_shows_decoded_images(trained):
  wd, state = trained
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  fd = [r["eval/fd"] for r in rows if "eval/fd" in r]
  assert len(fd) == 1 and np.isfinite(fd[0])
  gan, restored = restore.restore_for_sampling(wd)[1:3]
  assert gan.latent is not None and gan.image_shape == (8, 8, 4)
  images = sampling.generate(gan, restored, 5, jax.random.key(0))
  assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
  raw = sampling.generate_latents(gan, restored, 5, jax.random.key(0))
  assert raw.shape == (5, 8, 8, 4)
  for a, b in zip(jax.tree.leaves(state.g.params), jax.tree.leaves(restored.g.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_latent_run_resumes_bit_exactly(latents, trained, tmp_path):
  """Two steps, then two more in a second invocation: the weights of the four-step run
  (whose evaluation draws from keys of its own and changes nothing)."""
  train.train_and_evaluate(latent_config(latents, **{"train.steps": 2}), str(tmp_path))
  resumed = train.train_and_evaluate(latent_config(latents), str(tmp_path))
  for a, b in zip(jax.tree.leaves(trained[1].g.params), jax.tree.leaves(resumed.g.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_a_g_that_ends_in_tanh_ends_without_it_on_latents(arch):
  from flax import nnx
  from jaxgan.core import models
  cfg = tiny_config(**{"model.arch": arch, "model.dcgan.g_base_features": 8,
                       "model.dcgan.d_base_features": 8}).model
  z = jax.random.normal(jax.random.key(0), (3, cfg.latent_dim))
  out = {}
  for linear in (False, True):
    g, _ = models.build(cfg, (8, 8, 4), 0, 0, linear_output=linear)
    out[linear] = np.asarray(g(z, None, train=False))
  assert out[True].shape == (3, 8, 8, 4)
  np.testing.assert_allclose(np.tanh(out[True]), out[False], rtol=1e-5, atol=1e-6)


def test_latent_runs_refuse_what_cannot_work(latents, tmp_path):
  with pytest.raises(UserError, match=r"config.model.decoder=.* data are images, not latents"):
    train.train_and_evaluate(tiny_config(**{"model.decoder": ENCODER}), str(tmp_path / "b"))
  with pytest.raises(UserError, match=r"holds weights with sha256 .* encoded by"):
    train.train_and_evaluate(latent_config(latents, **{"model.decoder": FLUX1}),
                             str(tmp_path / "c"))


def test_sample_mode_exports_decoded_images_and_on_request_the_latents(trained):
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  wd = trained[0]
  r = subprocess.run([sys.executable, os.path.join(root, "launch.py"), "--workdir", wd,
                      "--mode", "sample", "--num_samples", "6", "--export_latents"],
                     capture_output=True, text=True, cwd=root)
  assert r.returncode == 0, r.stderr[-2000:]
  npz = np.load(os.path.join(wd, "samples.npz"))
  assert npz["images"].shape == (6, 32, 32, 3) and npz["latents"].shape == (6, 8, 8, 4)
  gan, state = restore.restore_for_sampling(wd)[1:3]
  graphdef, ae_state = gan.latent.decoder_parts()
  from flax import nnx
  from jaxgan.eval.visualize import to_uint8
  decoded = to_uint8(nnx.merge(graphdef, ae_state).decode(
      gan.latent.denormalize(jnp.asarray(npz["latents"]))))
  assert np.abs(decoded.astype(int) - npz["images"].astype(int)).max() <= 1


def test_the_report_says_the_run_is_latent(latents, tmp_path):
  from jaxgan.eval import report
  cfg = {"data": {"folder": latents, "latent_norm": "channel"}, "model": {"arch": "r3gan2"}}
  (tmp_path / "config.json").write_text(json.dumps(cfg))
  page = open(report.build(str(tmp_path))).read()
  assert "<h2>Latent run</h2><p>G and D work on 8x8x4 latents of 32 images (32x32x3)" in page


def test_validation_refuses_what_has_no_meaning_on_latents(latents):
  from jaxgan.run import validate
  for over, match in (({"augment.policy": "ada"}, r"config.augment.ada_ops='bgc': ADA's colour"),
                      ({"eval.metrics": "fd,ppl"}, r"config.eval.metrics has 'ppl'"),
                      ({"data.on_device": True}, r"on_device=True holds uint8 images")):
    with pytest.raises(UserError, match=match):
      validate.validate(latent_config(latents, **over))
  validate.validate(latent_config(latents, **{"augment.policy": "ada", "augment.ada_ops": "bg"}))
  # DiffAugment's colour is channel-agnostic: GAT applies it to SD-VAE latents
  validate.validate(latent_config(latents, **{"augment.policy": "gat_color,translation"}))


def test_resuming_on_a_changed_latent_dataset_is_refused(latents, tmp_path):
  import shutil
  copy = tmp_path / "latents"
  shutil.copytree(latents, copy)
  train.train_and_evaluate(latent_config(str(copy), **{"train.steps": 1}), str(tmp_path / "r"))
  manifest = json.load(open(copy / "manifest.json"))
  manifest["channel_std"] = [2 * s for s in manifest["channel_std"]]   # encoded again
  json.dump(manifest, open(copy / "manifest.json", "w"))
  with pytest.raises(UserError, match=r"with other statistics than config.data.folder="):
    train.train_and_evaluate(latent_config(str(copy), **{"train.steps": 2}), str(tmp_path / "r"))


def test_flux2_has_no_scaling_factor_to_normalise_with():
  from jaxgan.pretrained import autoencoder_files
  cfg = autoencoder_files.read_config(os.path.join(os.path.dirname(ENCODER), "flux2"))
  assert cfg.scaling_factor is None
  desc = {"encoder": {"scaling_factor": None, "class_name": "AutoencoderKLFlux2",
                      "directory": "", "weights_sha256": ""},
          "latent_shape": [4, 4, 32], "channel_mean": [0.0] * 32, "channel_std": [1.0] * 32,
          "image_source": {"image_size": 16, "channels": 3}}
  with pytest.raises(UserError, match=r"latent_norm='autoencoder': the encoder "
                                      r"\(AutoencoderKLFlux2\) has no scaling_factor"):
    latent_space.from_description(desc, "autoencoder")
  assert latent_space.from_description(desc, "channel").scale == (1.0,) * 32


def test_gat_trains_on_latents_and_samples_decoded_images(latents, tmp_path):
  """GAT's G and D on the 8x8x4 latents (1-latent-pixel patches), with its recipe
  (finite-difference R1/R2, multi-level noise, DiffAugment's colour on latents) and REPA
  to a DINOv2 that sees the decoded real latents."""
  from configs import gat as gat_cfg
  from jaxgan.core import state as state_lib
  from tests.test_repa import TINY
  c = latent_config(latents, **{
      "model.arch": "gat", "model.gat.width": 32, "model.gat.depth": 2,
      "model.gat.heads": 2, "model.gat.patch": 1, "model.gat.levels": 2,
      "model.gat.repa_dim": 64, "model.gat.repa_hidden": 16,
      "train.steps": 2, "train.sample_every": 0})
  gat_cfg.recipe(c, 32, policy="gat_color,translation,cutout")
  c.regularizers += ({"name": "repa", "encoder": TINY, "resolution": 28},)
  state = train.train_and_evaluate(c, str(tmp_path / "r"))
  assert int(state.step) == 2
  init = state_lib.create(c, (8, 8, 4), 0)[1]
  assert np.any(np.asarray(state.d.params["repa"][2]["kernel"])
                != np.asarray(init.d.params["repa"][2]["kernel"]))
  gan, restored = restore.restore_for_sampling(str(tmp_path / "r"))[1:3]
  assert gan.image_shape == (8, 8, 4) and gan.truncates
  images = sampling.generate(gan, restored, 3, jax.random.key(0))
  assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
