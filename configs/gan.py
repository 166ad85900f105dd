"""Fully connected GANs of the MNIST / Fashion-MNIST tutorials (SEEDS.md section 1).

  --config configs/gan.py            = configs/gan.py:fashion
  --config configs/gan.py:fashion    variant C: 64-256-256-784, Fashion-MNIST, batch 100
  --config configs/gan.py:mnist_a    variant A: 64-256-512-1024-784, MNIST, batch 128
  --config configs/gan.py:mnist_b    variant B: latent 100, LeakyReLU G, betas (0.5, 0.999)

Without `--config.data.name` the data is the embedded Fashion-MNIST (offline);
`--config.data.name=fashion_mnist --config.data.data_dir=...` trains on the full TFDS set.
All use BCE on logits with the non-saturating generator loss (`--config.loss=minimax` for
the saturating form of the theory).
"""
from configs import default


VARIANTS = ("fashion", "mnist_a", "mnist_b")


def get_config(variant: str = "fashion"):
  c = default.get_config()
  c.model.arch = "mlp"
  c.loss = "non_saturating"
  for net in ("g", "d"):
    c.optim[net].lr = 2e-4
    c.optim[net].b1, c.optim[net].b2 = 0.9, 0.999  # torch.optim.Adam defaults
  c.eval.every = 5000            # FD/KID/class coverage with the in-domain classifier
  if variant == "fashion":
    c.model.latent_dim = 64
    c.model.mlp.g_widths, c.model.mlp.d_widths = (256, 256), (256, 256)
    c.data.batch_size = 100
    c.train.steps = 20_000       # the tutorial ran 500 epochs (300k steps on 60k images)
  elif variant == "mnist_a":
    c.data.name = "mnist"
    c.model.latent_dim = 64
    c.model.mlp.g_widths, c.model.mlp.d_widths = (256, 512, 1024), (1024, 512, 256)
    c.data.batch_size = 128
    c.train.steps = 46_800       # 100 epochs of 468 batches
    c.train.sample_every = 4680  # every 10 epochs
    c.sample.grid_cols = 8
  elif variant == "mnist_b":
    c.data.name = "mnist"
    c.model.latent_dim = 100
    c.model.g_act = "leaky_relu"
    c.model.mlp.g_widths, c.model.mlp.d_widths = (256, 512, 1024), (512, 256)
    c.optim.g.b1 = c.optim.d.b1 = 0.5
    c.d_loss_average = True      # D loss = (real BCE + fake BCE) / 2
    c.data.batch_size = 64
    c.train.steps = 46_850       # 50 epochs of 937 batches
    c.train.log_every = 400
    c.train.sample_every = 937   # every epoch
    c.sample.grid_size, c.sample.grid_cols = 25, 5
  else:
    raise ValueError(f"Unknown gan.py variant {variant!r}; valid: fashion, mnist_a, mnist_b.")
  return c


def sweep():
  """`--sweep`: learning rates x seeds (all population-compatible: add --population)."""
  from jaxgan.run import sweep as sweep_lib  # pylint: disable=g-import-not-at-top
  return sweep_lib.product(**{"optim.g.lr": [1e-4, 2e-4], "optim.d.lr": [1e-4, 2e-4],
                              "seed": [0, 1, 2]})
