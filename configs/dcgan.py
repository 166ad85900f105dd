"""DCGAN at 64x64 grayscale (SEEDS.md section 2, the LEGO-bricks tutorial).

  --config configs/dcgan.py           embedded Fashion-MNIST resized to 64x64 (offline)
  --config configs/dcgan.py:lego      a folder of images: add --config.data.folder=DIR
  --config configs/dcgan.py:upsample  nearest x2 + Conv instead of ConvTranspose in G
  --config configs/dcgan.py:wide      non-square: the embedded Fashion-MNIST stretched to
                                      32x64 (height x width), G from a 4x8 start (offline)

D: Conv(64, k4, s2, no bias) LReLU(0.2) Dropout(0.3); Conv(128/256/512) BN LReLU Dropout;
Conv(1, k4, valid). G: z as 1x1x100, ConvT(512, k4, valid) BN LReLU; ConvT(256/128/64, k4,
s2) BN LReLU; ConvT(1, k4, s2) tanh. Label noise 0.1, D loss = mean of the two BCEs,
Adam 2e-4 with beta1 0.5, batch 128.
"""
from configs import default


VARIANTS = ("default", "lego", "upsample", "wide")


def get_config(variant: str = "default"):
  c = default.get_config()
  c.data.image_size, c.data.channels = 64, 1
  c.data.batch_size = 128
  c.seed = 42
  c.model.arch = "dcgan"
  c.model.latent_dim = 100
  c.model.dcgan.start_size = 4
  c.model.dcgan.g_stem, c.model.dcgan.d_head = "convt", "conv"
  c.model.g_act = c.model.d_act = "leaky_relu"
  c.model.g_norm = c.model.d_norm = "batch"
  c.model.d_dropout = 0.3
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 64
  c.loss = "non_saturating"
  c.d_loss_average = True
  c.labels.noise = 0.1
  for net in ("g", "d"):
    c.optim[net].lr, c.optim[net].b1, c.optim[net].b2 = 2e-4, 0.5, 0.999
  c.train.steps = 10_000
  c.train.log_every = 50
  c.train.sample_every = 500
  c.train.checkpoint_every = 500
  c.eval.every = 2000          # the embedded data is labelled: FD with its classifier
  if variant == "lego":
    c.data.folder = "data/lego-brick-images/dataset"  # override with your folder
    c.eval.every = 0           # unlabelled images: no in-domain classifier
  elif variant == "upsample":
    c.model.dcgan.upsample = "resize"
  elif variant == "wide":      # any H,W whose sides are 4 * 2**n multiples: see README
    c.data.image_size = (32, 64)
    c.data.batch_size = 64
    c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 32
    c.train.steps = 3000
    c.eval.every = c.train.sample_every = c.train.checkpoint_every = 500
  elif variant != "default":
    raise ValueError(f"Unknown dcgan.py variant {variant!r}; valid: default, lego, upsample, "
                     "wide.")
  return c
