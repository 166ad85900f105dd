"""SNGAN (Miyato et al. 2018) with the ResNet of PyTorch-StudioGAN (`config.model.arch='resnet'`).

  --config configs/sngan.py                 CIFAR-10 (TFDS cifar10), class-conditional:
                                            conditional BatchNorm in G, projection D
                                            (StudioGAN's CIFAR10/SNGAN.yaml)
  --config configs/sngan.py:cifar10_uncond  the same, unconditional (the paper's CIFAR-10
                                            row; the pinned `resnet32` benchmark model)
  --config configs/sngan.py:fashion         Fashion-MNIST at 32x32 grayscale, unconditional,
                                            narrower and shorter for a 2-core CPU
  --config configs/sngan.py:fashion_cond    the same, class-conditional (projection)
  --config configs/sngan.py:fashion_dcgan   the SNGAN recipe on the 28x28 DCGAN networks of
                                            configs/wgan_gp.py, one D step per G step and an
                                            EMA generator: the time-to-quality recipe for
                                            this CPU (README, "Time to quality")
  --config configs/sngan.py:fashion_dcgan_cond  the same, class-conditional (projection D,
                                            a class embedding appended to G's z)
  --config configs/sngan.py:fashion_dcgan,24000  either, with its cosine learning rates
                                            over 24,000 steps instead of 30,000

CIFAR-10 settings (StudioGAN's defaults with its SNGAN.yaml): z 128 ~ N(0, I); G 256 wide
(g_conv_dim 64), D 128 wide (d_conv_dim 64); spectral norm on every layer of D; hinge loss;
5 D updates (each with a fresh real batch and z) per G update; Adam 2e-4, betas
(0.5, 0.999); batch 64; orthogonal initialisation; 100,000 G updates; no EMA.
One difference: StudioGAN flips CIFAR-10 training images at random (PRE.apply_rflip); jaxgan
has no data-level flip, so these configs train on the unflipped images (the D-input
augmentation `--config.augment.policy=xflip` is the nearest option).

:fashion_dcgan isolates the recipe from the network: the generator and critic of
configs/wgan_gp.py (28x28, DCGAN), trained instead with spectral norm in D, the hinge
loss and one D update per G update with Adam 2e-4, betas (0.5, 0.999) -- the paper's
setting "C" (Miyato et al. 2018, table 1; spectral norm's robustness across such
settings is the paper's point) -- plus an EMA of G's weights (decay 0.999) for sampling
and evaluation and a cosine decay of both learning rates to 1e-5 over the 30,000 steps.
Each step costs about a sixth of a WGAN-GP step (one critic update, no double backward).

The :fashion variants read Fashion-MNIST from ../shared/data/tensorflow_datasets (beside
this repository); `--config.data.name= ` trains on the embedded 10,000 images instead.
"""
from configs import default
from configs.default import SHARED_TFDS
VARIANTS = ("cifar10", "cifar10_uncond", "fashion", "fashion_cond", "fashion_dcgan",
            "fashion_dcgan_cond")


def get_config(variant: str = "cifar10"):
  variant, steps = default.split_variant(variant, "sngan.py", VARIANTS)
  if variant.startswith("fashion_dcgan"):
    return _fashion_dcgan(conditional=variant.endswith("_cond"), steps=steps or 30_000)
  if steps:
    raise ValueError(f"sngan.py variant {variant!r} takes no ',STEPS' (only the "
                     "fashion_dcgan variants, whose learning rates follow the run's length); "
                     "set --config.train.steps instead.")
  c = default.get_config()
  c.model.arch = "resnet"
  c.model.latent_dim = 128
  c.model.init = "ortho"
  c.model.g_act = c.model.d_act = "relu"
  c.model.g_norm, c.model.d_norm = "batch", "none"
  c.model.d_spectral_norm = True
  c.model.conditioning = "none" if variant in ("cifar10_uncond", "fashion") else "projection"
  c.loss = "hinge"
  c.train.n_critic = 5
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2 = 2e-4, 0.5, 0.999
  c.data.image_size, c.data.batch_size = 32, 64
  if variant.startswith("cifar10"):
    c.data.name, c.data.channels = "cifar10", 3
    c.model.resnet.g_base_features = c.model.resnet.d_base_features = 64
    c.train.steps = 100_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 2_000, 2_000
    c.eval.every = 5_000
  else:
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    # A quarter of the CIFAR-10 recipe's G width and half its D width (both 64 there).
    c.model.resnet.g_base_features, c.model.resnet.d_base_features = 16, 32
    # ~1.7 steps/s alone on the 2-core CPU: 2,000 steps are about 20 minutes. Raise
    # train.steps for quality (the CIFAR-10 recipe trains 100,000).
    c.train.steps = 2_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 50, 500, 500
    c.eval.every = 500
  return c


def _fashion_dcgan(conditional: bool, steps: int):
  from configs import wgan_gp  # pylint: disable=g-import-not-at-top
  c = wgan_gp.get_config()            # the 28x28 DCGAN G and D, Adam 2e-4 (0.5, 0.999)
  c.data.name, c.data.data_dir = "fashion_mnist", SHARED_TFDS
  c.loss, c.penalty = "hinge", "none"
  c.model.d_spectral_norm = True
  c.train.n_critic = 1
  c.ema_decay = 0.999
  if conditional:
    # Projection D (Miyato & Koyama 2018) and a class embedding in G; evaluation samples
    # every class equally (jaxgan/eval/sampling.make_labels).
    c.model.conditioning = "projection"
  c.train.steps = steps    # 30,000 by default: about 20 minutes on the 2-core Zen 5 CPU
  # Both learning rates anneal to 1e-5 over the run (cosine), as R3GAN's schedules do.
  c.schedules = tuple({"target": t, "kind": "cosine", "end": 1e-5, "steps": c.train.steps}
                      for t in ("optim.g.lr", "optim.d.lr"))
  c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 2_000, 2_000
  c.eval.every = 2_000
  return c
