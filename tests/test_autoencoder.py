"""jaxgan's AutoencoderKL (jaxgan/pretrained/) against diffusers' own.

tests/data/autoencoder/{sd,flux1,flux2} were written by diffusers 0.42.1 (torch 2.13.0,
CPU) with tools/independent/autoencoder_parity.py: small random networks in the SD-VAE,
FLUX.1 and FLUX.2 layouts (GroupNorm affines and FLUX.2's BatchNorm statistics randomised
too), saved with `save_pretrained`, and diffusers' posterior mean/std and decoding of a
batch of images. Loading those directories here must give the same numbers to float32
rounding; the full-size parameter counts are the ones diffusers' `num_parameters()`
printed for the same configurations.
"""
import json
import os
import shutil

import jax
import numpy as np
import pytest

from jaxgan.base.errors import UserError, UserFileError
from jaxgan.pretrained import autoencoder_files as files
from jaxgan.pretrained import autoencoder_kl as ae
from tests import torch_format

DATA = os.path.join(os.path.dirname(__file__), "data", "autoencoder")
SMALL_COUNTS = {"sd": 62_463, "flux1": 67_579, "flux2": 111_067}


def rel_err(a, b):
  return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("layout", ["sd", "flux1", "flux2"])
def test_encoder_and_decoder_equal_diffusers(layout):
  model, sha = files.load(os.path.join(DATA, layout))
  ref = np.load(os.path.join(DATA, layout, "parity.npz"))
  mean, std = jax.jit(lambda x: model.encode(x))(ref["x"])
  decoded = jax.jit(lambda z: model.decode(z))(ref["mean"])
  assert mean.shape == ref["mean"].shape == (2, 4, 4, model.cfg.latent_channels)
  assert decoded.shape == ref["x"].shape
  assert rel_err(mean, ref["mean"]) < 1e-5
  assert rel_err(std, ref["std"]) < 1e-5
  assert rel_err(decoded, ref["decoded"]) < 1e-5
  assert ae.num_parameters(model) == SMALL_COUNTS[layout]
  assert len(sha) == 64


def test_full_size_parameter_counts_equal_diffusers():
  """stabilityai/sd-vae-ft-mse, FLUX.1's and FLUX.2's autoencoders (eval_shape only)."""
  big = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2)
  sd = ae.AEConfig(**big, latent_channels=4)
  flux1 = ae.AEConfig(**big, latent_channels=16, use_quant_conv=False,
                      use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159)
  flux2 = ae.AEConfig(**big, latent_channels=32, class_name="AutoencoderKLFlux2")
  assert ae.num_parameters(ae.abstract(sd)) == 83_653_863
  assert ae.num_parameters(ae.abstract(flux1)) == 83_819_683
  assert ae.num_parameters(ae.abstract(flux2)) == 84_046_115
  assert sd.downsampling == 8


def test_scaling_and_shift_follow_the_config():
  model, _ = files.load(os.path.join(DATA, "flux1"))
  z = np.linspace(-2, 2, 16, dtype=np.float32)
  np.testing.assert_allclose(model.scale(z), (z - 0.1159) * 0.3611, rtol=1e-6)
  np.testing.assert_allclose(model.unscale(model.scale(z)), z, rtol=1e-5, atol=1e-6)


def test_flux2_latent_batchnorm_statistics_are_loaded():
  from safetensors.numpy import load_file
  model, _ = files.load(os.path.join(DATA, "flux2"))
  raw = load_file(os.path.join(DATA, "flux2", files.SAFETENSORS))
  np.testing.assert_array_equal(model.bn["running_var"][...], raw["bn.running_var"])
  assert model.bn["running_mean"][...].shape == (4 * 32,)


@pytest.mark.parametrize("layout", ["sd", "flux2"])
def test_save_then_load_is_exact(tmp_path, layout):
  model, _ = files.load(os.path.join(DATA, layout))
  files.save(model, str(tmp_path))
  again, _ = files.load(str(tmp_path))
  assert again.cfg == model.cfg
  for a, b in zip(jax.tree.leaves(jax.tree.map(np.asarray, jax.tree.leaves(model))),
                  jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, np.asarray(b))
  written = json.load(open(tmp_path / files.CONFIG))
  original = json.load(open(os.path.join(DATA, layout, files.CONFIG)))
  for key in ("block_out_channels", "latent_channels", "layers_per_block", "norm_num_groups",
              "use_quant_conv", "_class_name"):
    assert written[key] == original[key], key


def test_a_torch_bin_with_pre_0_15_attention_names_loads_the_same(tmp_path):
  """The `.bin` form through the allow-list unpickler, attention under its old names."""
  from safetensors.numpy import load_file
  src = os.path.join(DATA, "sd")
  state = {}
  for k, v in load_file(os.path.join(src, files.SAFETENSORS)).items():
    for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"),
                     ("to_out.0", "proj_attn")):
      k = k.replace(f"attentions.0.{new}.", f"attentions.0.{old}.")
    state[k] = v
  assert any(".proj_attn." in k for k in state)
  torch_format.save(state, str(tmp_path / files.BIN))
  shutil.copy(os.path.join(src, files.CONFIG), tmp_path)
  model, _ = files.load(str(tmp_path))
  ref = np.load(os.path.join(src, "parity.npz"))
  assert rel_err(model.decode(ref["mean"]), ref["decoded"]) < 1e-5


def _copy(tmp_path, layout="sd"):
  d = tmp_path / layout
  shutil.copytree(os.path.join(DATA, layout), d)
  return d


def test_bad_directories_are_one_line_errors_naming_the_file(tmp_path):
  with pytest.raises(UserFileError, match="no such directory"):
    files.load(str(tmp_path / "absent"))
  d = _copy(tmp_path)
  os.remove(d / files.SAFETENSORS)
  with pytest.raises(UserFileError, match=f"neither {files.SAFETENSORS} nor {files.BIN}"):
    files.load(str(d))
  os.remove(d / files.CONFIG)
  with pytest.raises(UserFileError, match=r"config.json: missing"):
    files.load(str(d))


def test_weights_that_do_not_fit_the_config_name_the_tensor(tmp_path):
  d = _copy(tmp_path)
  cfg = json.load(open(d / files.CONFIG))
  cfg["latent_channels"] = 8
  json.dump(cfg, open(d / files.CONFIG, "w"))
  with pytest.raises(UserError, match=r"tensor 'decoder.conv_in.weight' has shape "
                                      r"\(16, 4, 3, 3\), but config.json's network needs "
                                      r"\(16, 8, 3, 3\)") as e:
    files.load(str(d))
  assert str(d / files.SAFETENSORS) in str(e.value) and "\n" not in str(e.value)
  cfg["latent_channels"], cfg["layers_per_block"] = 4, 2
  json.dump(cfg, open(d / files.CONFIG, "w"))
  with pytest.raises(UserError, match=r"missing decoder.up_blocks.0.resnets.2.conv1.bias"):
    files.load(str(d))


def test_unsupported_layouts_are_refused_by_name(tmp_path):
  d = _copy(tmp_path)
  cfg = json.load(open(d / files.CONFIG))
  cfg["act_fn"] = "gelu"
  json.dump(cfg, open(d / files.CONFIG, "w"))
  with pytest.raises(UserError, match=r"config.json: act_fn 'gelu': only 'silu'"):
    files.load(str(d))
  cfg["act_fn"], cfg["_class_name"] = "silu", "AutoencoderTiny"
  json.dump(cfg, open(d / files.CONFIG, "w"))
  with pytest.raises(UserError, match=r"_class_name 'AutoencoderTiny' is not one jaxgan reads"):
    files.load(str(d))
