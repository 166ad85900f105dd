"""R3GAN2 (IFeelBloated/R3GAN2 at 3b04752d): R3GAN on EDM2's magnitude-preserving layers
(`config.model.arch='r3gan2'`, jaxgan/core/models/r3gan2.py), with post-hoc EMA.

  --config configs/r3gan2.py               CIFAR-10, class-conditional (the authors' CIFAR10
                                           preset: 3 stages of 512 from 8 to 32 px)
  --config configs/r3gan2.py:ffhq64        FFHQ 64x64, unconditional (4 stages of 512)
  --config configs/r3gan2.py:ffhq256       FFHQ 256x256 (512 x 4, 256, 128)
  --config configs/r3gan2.py:imagenet32    ImageNet 32x32, class-conditional (1024 x 3)
  --config configs/r3gan2.py:imagenet64    ImageNet 64x64, class-conditional (1024 x 4)
  --config configs/r3gan2.py:fashion       Fashion-MNIST 32x32 grayscale, unconditional,
                                           narrow and short for a 2-core CPU (1,000 steps
                                           of 32, about 19 minutes)
  --config configs/r3gan2.py:fashion_latent  the same GAN's 8 px stage on the 8x8x4 latents
                                           of configs/autoencoder.py:fashion (a latent
                                           dataset in runs/fashion_latents: README)
  --config configs/r3gan2.py:fashion,1800  any variant with its decay length (and
                                           train.steps) set to 1,800 G steps, the
                                           schedules compressed or stretched to it

Every preset: z of 64 (+ a 64-d class embedding when conditional), 4 blocks per stage,
blocks 2x wide inside with 32 channels per group of the 3x3 convolutions; RpGAN with
gamma/2 (R1 + R2); Adam betas (0, beta2), lr 1e-2; one D step per G step; post-hoc EMA
profiles of G at sigma_rel 0.01, 0.05 and 0.10 (the reference's three; it samples with
0.05), snapshots every 8 Mi images (32 Mi for ImageNet). Schedules over the decay length
T (2e7 images, ImageNet 2e8), in G steps of the batch (`recipe`): lr EDM2-style for
CIFAR-10 (1e-2 / sqrt(max(t / 512k images, 1)), ramped up over 1e6 images), else cosine
1e-2 -> 1e-3 over T then 1e-3 / sqrt(t / T); beta2 0.9 -> 0.99, gamma -> gamma / 10
(CIFAR-10 0.05, FFHQ-64 2, FFHQ-256 150, ImageNet-32 0.5, ImageNet-64 1) and ADA's p
0 -> 0.55 / 0.3 / 0.3 / 0.4 / 0.4, cosine over T. train.steps is T (the authors train on
at the final values: raise it). Differences: ADA's transformations all at the same
strength and without the reference's noisy cutout. Batch sizes
are the README's launch commands' (CIFAR-10 512, FFHQ 256, ImageNet 4096). FFHQ and
ImageNet need data prepared from the user's files (`--config.data.folder=` or
`prepare`); the CIFAR-10 preset reads TFDS cifar10. x-flips of the data (`--mirror=1`)
are not reproduced (jaxgan has no data-level flip).
"""
from configs import default
from configs.default import SHARED_TFDS

VARIANTS = ("cifar10", "ffhq64", "ffhq256", "imagenet32", "imagenet64", "fashion",
            "fashion_latent")

# variant: (data, size, classes, widths from 8 px up, batch, decay images T, gamma at the
# start, ADA's p at the end, lr schedule)
PRESETS = {
    "cifar10": ("cifar10", 32, 10, (512,) * 3, 512, 2e7, 0.05, 0.55, "edm2"),
    "ffhq64": ("", 64, 0, (512,) * 4, 256, 2e7, 2.0, 0.3, "cosine_rsqrt"),
    "ffhq256": ("", 256, 0, (512, 512, 512, 512, 256, 128), 256, 2e7, 150.0, 0.3,
                "cosine_rsqrt"),
    "imagenet32": ("", 32, 1000, (1024,) * 3, 4096, 2e8, 0.5, 0.4, "cosine_rsqrt"),
    "imagenet64": ("", 64, 1000, (1024,) * 4, 4096, 2e8, 1.0, 0.4, "cosine_rsqrt"),
}


def recipe(c, steps: int, gamma: float, p_end: float, lr_kind: str, batch: int) -> None:
  """R3GAN2's schedules (train.py), in G steps of `batch` images: the learning rate (1e-2:
  EDM2's form with t_ref = 512,000 images and a 1e6-image ramp-up, or cosine to 1e-3 over
  the decay length then 1/sqrt(t)), Adam's beta2 0.9 -> 0.99, gamma -> gamma / 10 and ADA's
  p 0 -> p_end, cosine over the decay length `steps`."""
  cos = lambda target, end: {"target": target, "kind": "cosine", "end": end, "steps": steps}
  if lr_kind == "edm2":
    lr = lambda t: {"target": t, "kind": "edm2", "steps": max(1, round(512_000 / batch)),
                    "warmup": max(1, round(1e6 / batch))}
  else:
    lr = lambda t: {"target": t, "kind": "cosine_rsqrt", "end": 1e-3, "steps": steps}
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2, c.optim[net].eps = 1e-2, 0.0, 0.9, 1e-8
  c.regularizers = ({"name": "r1", "weight": gamma}, {"name": "r2", "weight": gamma})
  c.augment.policy, c.augment.ada_target, c.augment.p = "ada", 0.0, 0.0
  c.schedules = (lr("optim.g.lr"), lr("optim.d.lr"), cos("optim.g.b2", 0.99),
                 cos("optim.d.b2", 0.99), cos("regularizers.r1", gamma / 10),
                 cos("regularizers.r2", gamma / 10), cos("augment.p", p_end))


def _fashion_latent(c, steps):
  """:fashion's GAN in the latent space of configs/autoencoder.py:fashion (8x8x4 latents of
  the 32x32 images): its 8 px stage alone (width 64, 2 blocks) makes and judges the
  latents, with the same recipe; the 16 and 32 px stages are the autoencoder's decoder.
  The latent dataset is made by the README's three commands (data.folder below)."""
  c.data.folder, c.data.image_size, c.data.channels = "runs/fashion_latents", 32, 1
  c.data.batch_size, c.model.conditioning = 32, "none"
  c.model.r3gan2.widths, c.model.r3gan2.blocks = (64,), (2,)
  c.train.steps = steps or 4_000
  c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 1_000, 1_000
  c.eval.every = 1_000
  c.phema.snapshot_images = 32 * 200
  recipe(c, c.train.steps, 0.05, 0.0, "cosine_rsqrt", 32)
  c.augment.policy = ""
  c.schedules = tuple(s for s in c.schedules if s["target"] != "augment.p")
  return c


def get_config(variant: str = "cifar10"):
  variant, steps = default.split_variant(variant, "r3gan2.py", VARIANTS)
  c = default.get_config()
  c.model.arch = "r3gan2"
  c.model.latent_dim = 64
  c.loss = "rpgan"
  c.penalty = "none"
  c.train.n_critic = 1
  c.phema.sigma_rels = (0.01, 0.05, 0.1)
  m = c.model.r3gan2
  if variant == "fashion_latent":
    return _fashion_latent(c, steps)
  if variant == "fashion":
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.data.image_size, c.data.batch_size = 32, 32
    c.model.conditioning = "none"
    # Sized for the 2-core CPU: the grouped 3x3 convolutions run there as block-diagonal
    # dense ones (jaxgan/core/models/r3gan.py), so the 32 px stage sets the cost. Width
    # 64 at every stage measured 6.4 s per step of 64; (64, 32, 32) with batch 32 0.88
    # steps/s (Zen 5, 2026-12-07): 1,000 steps in about 19 minutes.
    m.widths, m.blocks = (64, 32, 32), (2, 2, 2)
    c.train.steps = steps or 1_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 50, 250, 250
    c.eval.every = 250
    c.phema.snapshot_images = 32 * 50
    # CIFAR-10's recipe with its decay length compressed to the run
    recipe(c, c.train.steps, 0.05, 0.0, "cosine_rsqrt", 32)
    c.augment.policy = ""   # 2,000 steps of 60,000 images: no augmentation needed
    c.schedules = tuple(s for s in c.schedules if s["target"] != "augment.p")
    return c
  name, size, classes, widths, batch, decay, gamma, p_end, lr_kind = PRESETS[variant]
  c.data.name, c.data.image_size, c.data.channels, c.data.batch_size = name, size, 3, batch
  c.model.conditioning = "projection" if classes else "none"
  m.widths, m.blocks = widths, (4,) * len(widths)
  steps = steps or round(decay / batch)
  recipe(c, steps, gamma, p_end, lr_kind, batch)
  c.train.steps = steps     # the decay length; the authors train on at the final values
  c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 2_000, 2_000
  c.eval.every = 5_000
  c.phema.snapshot_images = 8 << 20 if batch < 4096 else 32 << 20
  return c
