"""WGAN-GP (Gulrajani et al. 2017; SEEDS.md section 4).

  --config configs/wgan_gp.py           the 28x28 `wgan_gp28` model of
                                        ../shared/bench/MODELS.md on the embedded data
  --config configs/wgan_gp.py:celeba64  the tutorial's setting: DCGAN-style critic without
                                        BatchNorm, TFDS celeb_a at 64x64 RGB
  --config configs/wgan_gp.py:gray64    the `wgan_gp64` benchmark model: dcgan64's G, its
                                        D without BatchNorm/Dropout, 64x64x1, 3 critic steps

Critic loss E[D(G(z))] - E[D(x)] + 10 E[(||grad D(x_hat)|| - 1)^2], x_hat on uniform
interpolates; generator loss -E[D(G(z))]; 5 critic updates (fresh z and real batch each)
per generator update; Adam 2e-4, betas (0.5, 0.999). `train.steps` counts generator updates.
"""
from configs import default


VARIANTS = ("default", "celeba64", "gray64")


def get_config(variant: str = "default"):
  c = default.get_config()
  c.loss, c.penalty, c.penalty_weight = "wgan", "gp", 10.0
  c.train.n_critic = 5
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2 = 2e-4, 0.5, 0.999
  c.model.arch = "dcgan"
  c.model.g_norm, c.model.d_norm = "batch", "none"   # no BatchNorm in a GP critic
  c.model.d_act = "leaky_relu"
  if variant == "default":
    c.data.image_size, c.data.channels, c.data.batch_size = 28, 1, 64
    c.model.latent_dim = 64
    c.model.dcgan.start_size = 7
    c.model.dcgan.g_stem, c.model.dcgan.d_head = "dense", "dense"
    c.model.g_act = "relu"
    c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 64
    c.train.steps = 2_000
    c.eval.every = 500
    c.train.log_every = 50
    c.train.sample_every = 250
    c.train.checkpoint_every = 250
  elif variant in ("celeba64", "gray64"):
    if variant == "celeba64":
      c.data.name, c.data.split = "celeb_a", "train"
      c.data.label_key = ""
      c.data.image_size, c.data.channels, c.data.batch_size = 64, 3, 512
      c.model.latent_dim = 128
    else:
      c.data.image_size, c.data.channels, c.data.batch_size = 64, 1, 64
      c.model.latent_dim = 100
    c.model.dcgan.start_size = 4
    c.model.dcgan.g_stem, c.model.dcgan.d_head = "convt", "conv"
    c.model.g_act = "leaky_relu"
    c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 64
    c.train.n_critic = 3
    c.train.steps = 20_000
  else:
    raise ValueError(f"Unknown wgan_gp.py variant {variant!r}; valid: default, celeba64, gray64.")
  return c


def sweep():
  """`--sweep`: critic learning rate x gradient-penalty weight x seeds."""
  from jaxgan.run import sweep as sweep_lib  # pylint: disable=g-import-not-at-top
  return sweep_lib.product(**{"optim.d.lr": [1e-4, 2e-4], "penalty_weight": [5.0, 10.0],
                              "seed": [0, 1]})
