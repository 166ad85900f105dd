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
from configs import default, sngan

VARIANTS = ("cifar10", "cifar10_uncond", "fashion", "fashion_cond")


def get_config(variant: str = "cifar10"):
  """SNGAN's settings (configs/sngan.py: data, hinge, 5 D steps, Adam, ortho init, spectral
  norm in D, BatchNorm in G, the same variants), with BigGAN's networks and EMA."""
  if variant not in VARIANTS:
    raise ValueError(f"Unknown biggan.py variant {variant!r}; valid: {', '.join(VARIANTS)}.")
  c = sngan.get_config(variant)
  c.model.resnet = default.get_config().model.resnet   # not read by biggan: keep defaults
  c.model.arch = "biggan"
  c.model.latent_dim = 80
  c.ema_decay, c.ema_start = 0.9999, 1000
  if not variant.startswith("cifar10"):
    c.model.biggan.g_base_features = c.model.biggan.d_base_features = 24
    c.model.biggan.shared_dim = 32
    c.ema_decay, c.ema_start = 0.999, 500
    # ~1.2 s/step alone on the 2-core CPU (plus ~90 s to compile): 1,000 steps are
    # about 20 minutes. Raise train.steps for quality.
    c.train.steps = 1_000
  return c
