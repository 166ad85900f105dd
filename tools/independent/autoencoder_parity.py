"""Fixtures for the parity of jaxgan's AutoencoderKL (jaxgan/pretrained/) with diffusers'.

Builds, with diffusers itself, three small randomly initialised autoencoders in the three
layouts jaxgan reads -- SD-VAE (4 latent channels, quant convs), FLUX.1 (16 channels, no
quant convs, a shift factor) and FLUX.2 (`AutoencoderKLFlux2`, 32 channels, a latent
BatchNorm, a decoder of its own widths) -- with every GroupNorm's affine map and the
BatchNorm's statistics randomised too, and saves each with `save_pretrained` (config.json +
diffusion_pytorch_model.safetensors) beside `parity.npz`: a batch of images and diffusers'
outputs for it (the posterior's mean and std, the decoding of the mean), channels last.
tests/test_autoencoder.py loads the directories with jaxgan and compares, without torch.

It also prints the parameter counts (`num_parameters()`) of the full-size configurations
of stabilityai/sd-vae-ft-mse, FLUX.1 and FLUX.2, which the tests state.

  /work/venv-torch/bin/python tools/independent/autoencoder_parity.py tests/data/autoencoder

Needs torch, diffusers, safetensors and numpy in their own venv (python3 -m venv
.venv-torch && .venv-torch/bin/pip install torch==2.13.0 diffusers safetensors numpy); not
part of requirements.txt. Made with diffusers 0.42.1 and torch 2.13.0 (CPU).
"""
import os
import sys

import diffusers
import numpy as np
import torch
from diffusers import AutoencoderKL, AutoencoderKLFlux2

TINY = dict(block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=4,
            sample_size=16, down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3)
LAYOUTS = {
    "sd": (AutoencoderKL, dict(latent_channels=4)),
    "flux1": (AutoencoderKL, dict(latent_channels=16, use_quant_conv=False,
                                  use_post_quant_conv=False, scaling_factor=0.3611,
                                  shift_factor=0.1159)),
    "flux2": (AutoencoderKLFlux2, dict(latent_channels=32, decoder_block_out_channels=(8, 16, 24))),
}
FULL = {
    "sd-vae-ft-mse": (AutoencoderKL, dict(block_out_channels=(128, 256, 512, 512),
                                          down_block_types=("DownEncoderBlock2D",) * 4,
                                          up_block_types=("UpDecoderBlock2D",) * 4,
                                          layers_per_block=2, latent_channels=4,
                                          sample_size=256)),
    "flux1": (AutoencoderKL, dict(block_out_channels=(128, 256, 512, 512),
                                  down_block_types=("DownEncoderBlock2D",) * 4,
                                  up_block_types=("UpDecoderBlock2D",) * 4,
                                  layers_per_block=2, latent_channels=16,
                                  use_quant_conv=False, use_post_quant_conv=False)),
    "flux2": (AutoencoderKLFlux2, dict()),
}


def randomise_norms(model, gen):
  for m in model.modules():
    if isinstance(m, torch.nn.GroupNorm):
      m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=gen)
      m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=gen)
    if isinstance(m, torch.nn.BatchNorm2d):
      m.running_mean.data = 0.3 * torch.randn(m.running_mean.shape, generator=gen)
      m.running_var.data = 0.5 + torch.rand(m.running_var.shape, generator=gen)


def nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1).astype(np.float32)


def main(out):
  torch.manual_seed(0)
  gen = torch.Generator().manual_seed(1)
  x = torch.rand((2, 3, 16, 16), generator=gen) * 2 - 1
  for name, (cls, kw) in LAYOUTS.items():
    model = cls(**TINY, **kw).eval()
    randomise_norms(model, gen)
    with torch.no_grad():
      post = model.encode(x).latent_dist
      dec = model.decode(post.mean).sample
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    np.savez_compressed(os.path.join(d, "parity.npz"), x=nhwc(x), mean=nhwc(post.mean),
                        std=nhwc(post.std), decoded=nhwc(dec))
    print(name, "parameters", model.num_parameters(), "->", d)
  for name, (cls, kw) in FULL.items():
    with torch.device("meta"):
      print("full", name, cls(**kw).num_parameters())
  print("diffusers", diffusers.__version__, "torch", torch.__version__)


if __name__ == "__main__":
  main(sys.argv[1])
