"""BigGAN (Brock et al. 2019) with PyTorch-StudioGAN's big_resnet (`config.model.arch='biggan'`).

  --config configs/biggan.py                 CIFAR-10 (TFDS cifar10), class-conditional
                                             (StudioGAN's CIFAR10/BigGAN.yaml)
  --config configs/biggan.py:cifar10_uncond  the same, unconditional
  --config configs/biggan.py:fashion         Fashion-MNIST at 32x32 grayscale, unconditional,
                                             a quarter of the widths, for a 2-core CPU
  --config configs/biggan.py:fashion_cond    the same, class-conditional (projection)

CIFAR-10: z 80 in 4 chunks of 20, shared class embedding 128, G 384 wide and D 192
(g_conv_dim = d_conv_dim = 96), self-attention at 16x16 in G (after block 2) and D (after
block 1), spectral norm in G and D, orthogonal initialisation, hinge loss, 5 D steps per G
step, Adam 2e-4 with betas (0.5, 0.999), batch 64, 100,000 steps, an EMA generator (0.9999)
from step 1,000. As in configs/sngan.py, StudioGAN's random flips of the training images
are not reproduced. Sample with `--truncation` for the truncation trick.
"""
from configs import default
from configs.default import SHARED_TFDS

VARIANTS = ("cifar10", "cifar10_uncond", "fashion", "fashion_cond")


def get_config(variant: str = "cifar10"):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown biggan.py variant {variant!r}; valid: {', '.join(VARIANTS)}.")
  c = default.get_config()
  c.model.arch = "biggan"
  c.model.latent_dim = 80
  c.model.init = "ortho"
  c.model.g_act = c.model.d_act = "relu"
  c.model.g_norm, c.model.d_norm = "batch", "none"
  c.model.d_spectral_norm = True
  c.model.conditioning = "none" if variant in ("cifar10_uncond", "fashion") else "projection"
  c.loss = "hinge"
  c.train.n_critic = 5
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2 = 2e-4, 0.5, 0.999
  c.ema_decay, c.ema_start = 0.9999, 1000
  c.data.image_size, c.data.batch_size = 32, 64
  if variant.startswith("cifar10"):
    c.data.name, c.data.channels = "cifar10", 3
    c.train.steps = 100_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 2_000, 2_000
    c.eval.every = 5_000
  else:
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.model.biggan.g_base_features = c.model.biggan.d_base_features = 24
    c.model.biggan.shared_dim = 32
    c.ema_decay, c.ema_start = 0.999, 500
    c.train.steps = 3_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 50, 500, 500
    c.eval.every = 500
  return c
