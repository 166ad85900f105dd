"""R3GAN (Huang et al., NeurIPS 2024): the R3GAN backbone, the relativistic pairing loss with
R1 and R2, and its schedules (`config.model.arch='r3gan'`).

  --config configs/r3gan.py                 CIFAR-10 (TFDS cifar10), class-conditional, the
                                            authors' `--preset=CIFAR10 --cond=1` settings
  --config configs/r3gan.py:cifar10_uncond  the same, unconditional
  --config configs/r3gan.py:fashion         Fashion-MNIST at 32x32 grayscale, unconditional,
                                            narrow and short for a 2-core CPU
  --config configs/r3gan.py:fashion_cond    the same, class-conditional

CIFAR-10 (train.py's preset): 4 stages of 768 channels (4 -> 32 px), 2 blocks each, 96
groups, expansion 2, z 64 (+ a 64-d class embedding), batch 512; loss rpgan + gamma/2
(R1 + R2) every D step; Adam betas (0, beta2); one D step per G step. Cosine schedules
over 2e7 images (39,063 steps of 512): lr 2e-4 -> 5e-5 (G and D), beta2 0.9 -> 0.99,
gamma 0.05 -> 0.005, EMA half-life 0 -> 5,000 kimg, ADA's p 0 -> 0.55; x-flips of the
data (`--mirror=1`) are not reproduced (jaxgan has no data-level flip; ADA's pipeline
flips D's inputs). Training length: the schedules' horizon (the authors train longer
at the final values; raise train.steps).
Differences on purpose: ADA's transformations all have the same strength here (the authors
weigh colour at 0.5); the reference runs three stages in bfloat16, these run in float32.
"""
from configs import default
from configs.default import SHARED_TFDS
VARIANTS = ("cifar10", "cifar10_uncond", "fashion", "fashion_cond")


def _schedules(steps: int, lr_end: float, gamma_end: float, ema_kimg: float, p_end: float):
  s = lambda target, end: {"target": target, "kind": "cosine", "end": end, "steps": steps}
  out = [s("optim.g.lr", lr_end), s("optim.d.lr", lr_end), s("optim.g.b2", 0.99),
         s("optim.d.b2", 0.99), s("regularizers.r1", gamma_end),
         s("regularizers.r2", gamma_end), s("ema_halflife_kimg", ema_kimg)]
  if p_end:
    out.append(s("augment.p", p_end))
  return tuple(out)


def get_config(variant: str = "cifar10"):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown r3gan.py variant {variant!r}; valid: {', '.join(VARIANTS)}.")
  c = default.get_config()
  c.model.arch = "r3gan"
  c.model.conditioning = "none" if variant in ("cifar10_uncond", "fashion") else "projection"
  c.loss = "rpgan"
  c.train.n_critic = 1
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2 = 2e-4, 0.0, 0.9
  c.ema_halflife_kimg = 0.0
  c.data.image_size = 32
  m = c.model.r3gan
  if variant.startswith("cifar10"):
    c.data.name, c.data.channels, c.data.batch_size = "cifar10", 3, 512
    c.model.latent_dim = 64
    m.widths, m.cardinality, m.blocks = (768,) * 4, (96,) * 4, (2,) * 4
    gamma = 0.05
    c.augment.policy, c.augment.ada_target, c.augment.p = "ada", 0.0, 0.0
    steps = 39_063                       # 2e7 images of batch 512
    c.schedules = _schedules(steps, 5e-5, 0.005, 5000.0, 0.55)
    c.train.steps = steps
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 2_000, 2_000
    c.eval.every = 5_000
  else:
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.data.batch_size = 64
    c.model.latent_dim = 64
    # Narrow for the CPU, halving the width per doubling of the resolution (as the
    # authors' FFHQ/ImageNet presets do above 32 px): 128, 64, 32, 16 channels from 4 to
    # 32 px, groups of 16 channels inside the blocks as in CIFAR-10's (1536 / 96).
    m.widths, m.cardinality, m.blocks = (128, 64, 32, 16), (16, 8, 4, 2), (2,) * 4
    gamma = 0.05
    steps = 1_500     # ~1.3 steps/s alone on the 2-core CPU: about 20 minutes
    # The CIFAR-10 curves compressed to this run; the EMA half-life ends at 10 kimg
    # (StyleGAN2's), a horizon of ~160 steps of 64 images.
    c.schedules = _schedules(steps, 5e-5, 0.005, 10.0, 0.0)
    c.train.steps = steps
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 50, 500, 500
    c.eval.every = 500
  c.regularizers = ({"name": "r1", "weight": gamma}, {"name": "r2", "weight": gamma})
  c.penalty = "none"
  return c
