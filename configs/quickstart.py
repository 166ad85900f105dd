"""The README's quickstart: the fastest recipe to recognisable garments of every class on
the embedded data (10,000 Fashion-MNIST images shipped in the package; nothing to
download).

It is the class-conditional SNGAN recipe of `configs/sngan.py:fashion_dcgan_cond` (Miyato
et al. 2018, setting C: spectral norm in D, hinge loss, one D step per G step, Adam (0.5,
0.999); projection D and a class embedding in G, so every class is drawn) on the 28x28
DCGAN networks of `configs/wgan_gp.py`, with an EMA generator and cosine-annealed
learning rates, shortened to STEPS so that a fresh clone trains and evaluates it in about
five minutes on the slower (AVX2-only) kind of 2-core CPU (README, Quickstart). The MLP
GAN of the source tutorial, the quickstart before, stays as `configs/gan.py`.

  python launch.py --config configs/quickstart.py --workdir runs/quickstart
"""
from configs import sngan

VARIANTS = ("default",)
STEPS = 1_500


def get_config(variant: str = "default"):
  if variant != "default":
    raise ValueError(f"Unknown quickstart.py variant {variant!r}; valid: default.")
  c = sngan.get_config("fashion_dcgan_cond")
  c.data.name, c.data.data_dir = "", ""     # the embedded Fashion-MNIST
  c.train.steps = STEPS
  # Short-run settings (measured, one seed each, 1,500 steps; FD of 2,000 samples in the
  # in-domain classifier's features): the paper's EMA 0.999 averages over ~1,000 steps,
  # half of this run, and gave FD 75.8; 0.99 gave 9.9, and 0.99 with Adam 5e-4 instead
  # of 2e-4 gave 8.8 and the cleanest grid.
  c.ema_decay = 0.99
  c.optim.g.lr = c.optim.d.lr = 5e-4
  c.schedules = tuple({"target": t, "kind": "cosine", "end": 1e-5, "steps": STEPS}
                      for t in ("optim.g.lr", "optim.d.lr"))
  c.train.sample_every = c.train.checkpoint_every = 500
  c.eval.every = STEPS                      # FD/KID/class coverage once, at the end
  return c
