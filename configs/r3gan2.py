"""R3GAN2 (IFeelBloated/R3GAN2 at 3b04752d): R3GAN on EDM2's magnitude-preserving layers
(`config.model.arch='r3gan2'`, jaxgan/core/models/r3gan2.py), with post-hoc EMA.

  --config configs/r3gan2.py               CIFAR-10, class-conditional (the authors' CIFAR10
                                           preset: 3 stages of 512 from 8 to 32 px)
  --config configs/r3gan2.py:ffhq64        FFHQ 64x64, unconditional (4 stages of 512)
  --config configs/r3gan2.py:ffhq256       FFHQ 256x256 (512 x 4, 256, 128)
  --config configs/r3gan2.py:imagenet32    ImageNet 32x32, class-conditional (1024 x 3)
  --config configs/r3gan2.py:imagenet64    ImageNet 64x64, class-conditional (1024 x 4)
  --config configs/r3gan2.py:fashion       Fashion-MNIST 32x32 grayscale, narrow and short
                                           for a 2-core CPU

Every preset: z of 64 (+ a 64-d class embedding when conditional), 4 blocks per stage,
blocks 2x wide inside with 32 channels per group of the 3x3 convolutions; RpGAN with
R1 + R2; Adam betas (0, beta2); one D step per G step; post-hoc EMA profiles of G at
sigma_rel 0.01, 0.05 and 0.10 (the reference's three; it samples with 0.05). Batch sizes
are the README's launch commands' (CIFAR-10 512, FFHQ 256, ImageNet 4096). FFHQ and
ImageNet need data prepared from the user's files (`--config.data.folder=` or
`prepare`); the CIFAR-10 preset reads TFDS cifar10. x-flips of the data (`--mirror=1`)
are not reproduced (jaxgan has no data-level flip).
"""
from configs import default
from configs.default import SHARED_TFDS

VARIANTS = ("cifar10", "ffhq64", "ffhq256", "imagenet32", "imagenet64", "fashion")

# variant: (data, size, classes, widths from 8 px up, batch)
PRESETS = {
    "cifar10": ("cifar10", 32, 10, (512,) * 3, 512),
    "ffhq64": ("", 64, 0, (512,) * 4, 256),
    "ffhq256": ("", 256, 0, (512, 512, 512, 512, 256, 128), 256),
    "imagenet32": ("", 32, 1000, (1024,) * 3, 4096),
    "imagenet64": ("", 64, 1000, (1024,) * 4, 4096),
}


def get_config(variant: str = "cifar10"):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown r3gan2.py variant {variant!r}; valid: {', '.join(VARIANTS)}.")
  c = default.get_config()
  c.model.arch = "r3gan2"
  c.model.latent_dim = 64
  c.loss = "rpgan"
  c.penalty = "none"
  c.train.n_critic = 1
  for net in ("g", "d"):
    c.optim[net].b1, c.optim[net].b2, c.optim[net].eps = 0.0, 0.9, 1e-8
  c.phema.sigma_rels = (0.01, 0.05, 0.1)
  m = c.model.r3gan2
  if variant == "fashion":
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.data.image_size, c.data.batch_size = 32, 64
    c.model.conditioning = "none"
    m.widths, m.blocks = (64, 64, 64), (2, 2, 2)
    c.train.steps = 2_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 50, 500, 500
    c.eval.every = 500
    c.phema.snapshot_images = 64 * 100
    c.regularizers = ({"name": "r1", "weight": 0.05}, {"name": "r2", "weight": 0.05})
    return c
  name, size, classes, widths, batch = PRESETS[variant]
  c.data.name, c.data.image_size, c.data.channels, c.data.batch_size = name, size, 3, batch
  c.model.conditioning = "projection" if classes else "none"
  m.widths, m.blocks = widths, (4,) * len(widths)
  c.regularizers = ({"name": "r1", "weight": 0.05}, {"name": "r2", "weight": 0.05})
  return c
