"""StyleGAN2 with ADA (Karras et al. 2020), the settings of the authors' StyleGAN2-ADA code
(NVlabs/stylegan2-ada-pytorch d72cc7d, train.py's cfg_specs) (`config.model.arch='stylegan2'`).

  --config configs/stylegan2.py            `--cfg=cifar --cond=1`: CIFAR-10 (TFDS cifar10),
                                           class-conditional, 32x32
  --config configs/stylegan2.py:paper256   `--cfg=paper256`: unconditional 256x256 (FFHQ:
                                           --config.data.folder=DIR of images)
  --config configs/stylegan2.py:fashion    Fashion-MNIST at 32x32 grayscale, unconditional,
                                           narrow, for a 2-core CPU
  --config configs/stylegan2.py:fashion_cond   the same, class-conditional

Common: z = w = 512, channels min(channel_base / res, 512), non-saturating logistic loss
(summed real and fake terms), lazy R1 (gamma, every 16 D updates) and path-length
regularization (weight 2, every 4 G updates, half batch), Adam (0, 0.99) eps 1e-8 with the
learning rate and beta2 adjusted for lazy regularization (lr x k/(k+1), beta2^(k/(k+1)) with
k the interval; the G's too when the path length is off, as the reference does), style
mixing 0.9, batch 64, ADA (target 0.6, 500 kimg for p to go 0 -> 1, the 'bgc' pipeline),
an EMA generator with a half-life in kimg, w_avg for the truncation trick (`--truncation PSI`).

cifar: fmaps 1 (channel_base 32768), 2 mapping layers, minibatch-std group 32, gamma 0.01,
lr 0.0025, EMA 500 kimg ramped up over 5% of the images seen, D 'orig' (no skips), no path
length, no style mixing; 100,000 kimg (1,562,500 steps of 64). paper256: fmaps 0.5, 8
mapping layers, group 8, gamma 1, EMA 20 kimg, 25,000 kimg (390,625 steps).
"""
from configs import default
from configs.default import SHARED_TFDS

VARIANTS = ("cifar", "paper256", "fashion", "fashion_cond")
G_EVERY, D_EVERY = 4, 16          # StyleGAN2-ADA's G_reg_interval, D_reg_interval


def lazy_adam(opt, lr: float, beta2: float, every: int):
  """Adam (0, beta2), eps 1e-8, adjusted for a regularizer run every `every` updates
  (StyleGAN2 appendix B: the optimizer sees k + 1 updates' worth of steps per k)."""
  ratio = every / (every + 1)
  opt.name, opt.lr, opt.b1, opt.b2, opt.eps = "adam", lr * ratio, 0.0, beta2 ** ratio, 1e-8


def get_config(variant: str = "cifar"):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown stylegan2.py variant {variant!r}; valid: {', '.join(VARIANTS)}.")
  c = default.get_config()
  c.model.arch = "stylegan2"
  c.model.g_norm = c.model.d_norm = "none"
  c.model.latent_dim = 512
  c.model.conditioning = "projection" if variant in ("cifar", "fashion_cond") else "none"
  c.loss, c.penalty, c.d_loss_average = "non_saturating", "none", False
  c.train.n_critic = 1
  c.data.batch_size = 64
  c.augment.policy, c.augment.ada_target = "ada", 0.6
  m = c.model.stylegan2
  pl, lr = True, 0.0025
  if variant == "cifar":
    c.data.name, c.data.image_size, c.data.channels = "cifar10", 32, 3
    m.channel_base, m.mapping_layers, m.mbstd_group = 32768, 2, 32
    m.d_architecture, m.mixing_prob, pl = "orig", 0.0, False
    gamma, c.ema_halflife_kimg, c.ema_rampup = 0.01, 500.0, 0.05
    c.train.steps = 1_562_500
  elif variant == "paper256":
    c.data.name, c.data.label_key = "", ""
    c.data.folder, c.data.image_size, c.data.channels = "ffhq256", 256, 3
    m.channel_base, m.mapping_layers, m.mbstd_group = 16384, 8, 8
    gamma, c.ema_halflife_kimg = 1.0, 20.0
    c.train.steps = 390_625
  else:
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.data.image_size, c.data.batch_size = 32, 32
    # A 2-core CPU's size: 128 channels at 4-8 px, 64 at 16, 32 at 32 (the cifar widths
    # / 4 to / 16), z = w = 128, 2 mapping layers (cifar's); everything else as paper256.
    c.model.latent_dim = m.w_dim = 128
    m.channel_base, m.channel_max, m.mapping_layers, m.mbstd_group = 1024, 128, 2, 4
    gamma, c.ema_halflife_kimg, c.ema_rampup = 0.01, 10.0, 0.05
    c.augment.policy = ""   # 60,000 images: no overfitting to counter in a CPU's budget
    c.train.steps = 20_000
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 1_000, 1_000
    c.eval.every = 2_000
  lazy_adam(c.optim.g, lr, 0.99, G_EVERY)
  lazy_adam(c.optim.d, lr, 0.99, D_EVERY)
  c.regularizers = ({"name": "r1", "weight": gamma, "every": D_EVERY},)
  if pl:
    c.regularizers += ({"name": "path_length", "weight": 2.0, "every": G_EVERY},)
  if variant in ("cifar", "paper256"):
    c.train.log_every, c.train.sample_every, c.train.checkpoint_every = 100, 5_000, 5_000
    c.eval.every = 20_000
  return c
