"""GAT, Generative Adversarial Transformers (Hyun, Lee and Heo, arXiv 2509.24935; code
hse1032/GAT at 21a2dd09): a DiT-like G and a ViT D (`config.model.arch='gat'`,
jaxgan/core/models/gat.py) with its recipe.

  --config configs/gat.py:xl2          GAT-XL/2 on ImageNet-256 SD-VAE latents (32x32x4),
                                       class-conditional: the paper's headline model
  --config configs/gat.py:SIZE         any preset: SIZE = s, b, l or xl (width 384, 768,
                                       1024, 1152; depth 12, 12, 24, 28) followed by the
                                       patch size 2, 4 or 8 (b2 is the authors' script)
  --config configs/gat.py:fashion      Fashion-MNIST 32x32 grayscale in pixel space, 4 px
                                       patches, unconditional, tiny (width 96, 4 blocks) for
                                       the 2-core CPU (about 20 minutes)
  --config configs/gat.py:fashion_latent  the same on the 8x8x4 latents of
                                       configs/autoencoder.py:fashion (runs/fashion_latents,
                                       README "Latent GANs"), 1-latent-pixel patches
  --config configs/gat.py:fashion,6000  any variant with train.steps = 6,000

The CPU variants replace the EMA's fixed decay by the same half-life (22 kimg) ramped up
over the first images, as StyleGAN2-ADA does, so that a short run's EMA has left the
initial weights.

The recipe (train.py and scripts/train_256_B2.sh of the reference): RpGAN with R1 and R2
of gamma 0.1 each, both as finite differences with sigma 0.01, every step
(`{"name": "r1", "weight": 0.1, "fd_sigma": 0.01}`; our r1/r2 carry the 1/2 of gamma/2);
AdamW with betas (0, 0.99), eps 1e-8, weight decay 0, learning rate 2e-4 x 768 / width for
G and for D, constant; gradients clipped to global norm 1.0; EMA of G with decay 0.999 from
the first step; DiffAugment's color (on half the batch), translation (1/8), cutout (1/2)
and flip (p 0.4) on every D input, on latents for the ImageNet presets; multi-level noise
(model.gat.mng). ImageNet presets: batch 512, 400,000 steps (the reference's caps), the
SD-VAE latents scaled by the autoencoder's 0.18215 (`data.latent_norm='autoencoder'`);
point `--config.data.folder` at a latent dataset made by `prepare --encoder` from the
sd-vae-ft-mse files (default: ./imagenet256_sdvae_latents).

REPA (the presets' third regularizer, jaxgan/core/regularizers/repa.py): D's last-block
tokens on real images are aligned to DINOv2 ViT-B/14's features of the same images, with
weight 1, through D's 2048-wide projector to 768 (`model.gat.repa_dim`). It needs the
encoder's weights as a local file, by default ./dinov2_vitb14_pretrain.pth (torch hub's
file; or `--config.regularizers` with another 'encoder' path); without it the term is off
and the run says so in one line. On latent data the encoder sees the decoded real latents
(jaxgan keeps no raw images beside them). Not reproduced: the reuse of the D step's z in
the G step (jaxgan draws a fresh z: the same distribution).
"""
from configs import default
from configs.default import SHARED_TFDS

SIZES = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "xl": (1152, 28, 16)}
PRESETS = tuple(f"{s}{p}" for s in SIZES for p in (2, 4, 8))
VARIANTS = PRESETS + ("fashion", "fashion_latent")
BASE_LR = 2e-4   # scripts/train_256_B2.sh; scaled by 768 / width
DINOV2_FILE = "dinov2_vitb14_pretrain.pth"   # torch hub's DINOv2 ViT-B/14 (768 wide)


def recipe(c, width: int, base_lr: float = BASE_LR, policy: str =
           "gat_color,translation,cutout,gat_flip"):
  """GAT's loss, penalties, optimizer, EMA and augmentation for networks `width` wide."""
  c.loss, c.penalty, c.train.n_critic = "rpgan", "none", 1
  c.regularizers = ({"name": "r1", "weight": 0.1, "fd_sigma": 0.01},
                    {"name": "r2", "weight": 0.1, "fd_sigma": 0.01})
  for net in ("g", "d"):
    o = c.optim[net]
    o.name, o.lr, o.b1, o.b2, o.eps = "adamw", base_lr * 768 / width, 0.0, 0.99, 1e-8
    o.weight_decay, o.grad_clip = 0.0, 1.0
  c.ema_decay, c.ema_rampup, c.ema_start = 0.999, 0.0, 0
  c.augment.policy = policy
  return c


def _model(c, width, depth, heads, patch):
  c.model.arch, c.model.latent_dim = "gat", 64
  g = c.model.gat
  g.width, g.depth, g.heads, g.patch = width, depth, heads, patch


def get_config(variant: str = "xl2"):
  variant, steps = default.split_variant(variant, "gat.py", VARIANTS)
  c = default.get_config()
  if variant in PRESETS:
    width, depth, heads = SIZES[variant[:-1]]
    _model(c, width, depth, heads, int(variant[-1]))
    c.model.conditioning = "projection"
    # the user's latent dataset (prepare --encoder with sd-vae-ft-mse): override the path
    c.data.folder, c.data.image_size, c.data.channels = "imagenet256_sdvae_latents", 256, 3
    c.data.latent_norm, c.data.batch_size = "autoencoder", 512
    c.train.steps = steps or 400_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 5_000, 5_000
    c.eval.every = 10_000
    recipe(c, width)
    c.model.gat.repa_dim = 768
    c.regularizers += ({"name": "repa", "weight": 1.0, "encoder": DINOV2_FILE,
                        "optional": True},)
    return c
  # the 2-core CPU: 64 tokens of width 96, 4 blocks (one output level after each)
  _model(c, 96, 4, 3, 4 if variant == "fashion" else 1)
  c.model.conditioning = "none"
  c.data.image_size, c.data.channels, c.data.batch_size = 32, 1, 32
  if variant == "fashion":
    c.data.name, c.data.data_dir = "fashion_mnist", SHARED_TFDS
  else:
    c.data.folder = "runs/fashion_latents"
  c.train.steps = steps or 6_000
  c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 1_000, 1_000
  c.eval.every = 1_000
  # flips are left out: Fashion-MNIST's items face one way
  recipe(c, 96, policy="gat_color,translation,cutout")
  # GAT's EMA (decay 0.999: a half-life of 22 kimg at batch 32) with StyleGAN2-ADA's
  # ramp-up (half-life at most 5% of the images seen): a run of a few thousand steps would
  # otherwise sample from weights still mostly at their initialisation, whose output, from
  # the same sin-cos input for every z, is one fixed patch pattern
  c.ema_halflife_kimg, c.ema_rampup = 22.2, 0.05
  return c
