"""Data-efficient training on 1,000 Fashion-MNIST images (issue 18's experiment).

  --config configs/data_efficient.py               no augmentation (the baseline)
  --config configs/data_efficient.py:diffaugment   DiffAugment "color,translation,cutout"
  --config configs/data_efficient.py:ada           ADA, adaptive p (target 0.6)
  --config configs/data_efficient.py:ada_full      ADA on all 10,000 embedded images

A DCGAN (configs/dcgan.py) at 32x32 with 32 base features, trained on a fixed subset of
1,000 images (`data.subset`, chosen by `data.subset_seed`) for 20,000 steps of batch 64
(1,280 epochs). D follows StyleGAN2-ADA's regime (Karras et al. 2020): no normalisation,
no dropout, no label noise, lazy R1. Without augmentation D memorises the subset (its
r_t = E[sign(D(real))] passes ADA's 0.6 near step 11,000 and reaches 0.8; the held-out
gap grows to ~2.7) and FD rises from its minimum near step 8,000; DiffAugment and ADA
learn more slowly and hold or improve (README, "Data-efficient training"). Samples and FD
use an EMA of G's weights (decay 0.999, a horizon of ~1,000 steps) so that the curves
compare the recipes rather than the last step's noise. FD with the in-domain classifier
every 2,000 steps shows the effect; `d_real_heldout` beside `d_real_train` in
metrics.jsonl (and `--mode report`'s overfitting panel) shows the overfitting itself.
"""
from configs import dcgan


VARIANTS = ("none", "diffaugment", "ada", "ada_full")


def get_config(variant: str = "none"):
  c = dcgan.get_config()
  c.data.image_size, c.data.batch_size = 32, 64
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 32
  # StyleGAN2-ADA's discriminator: no dropout and no label noise (regularizers against the
  # very overfitting studied here), no normalisation, and lazy R1 (gamma 0.01, its CIFAR-10
  # value, every 16 D steps). ADA reads r_t as a sign of overfitting only for such a D: a
  # BatchNorm D separates real from fake batches by their statistics and keeps r_t ~0.85
  # even on the full dataset, where this D stays below 0.6 for 20,000 steps.
  c.model.d_dropout = 0.0
  c.labels.noise = 0.0
  c.model.d_norm = "none"
  c.regularizers = ({"name": "r1", "weight": 0.01, "every": 16},)
  c.data.subset = 1000
  c.train.steps = 20_000
  c.ema_decay = 0.999
  c.train.log_every = 100
  c.train.sample_every = 4000
  c.train.checkpoint_every = 1000
  c.eval.every = 2000
  c.eval.metrics = "fd"
  if variant == "diffaugment":
    c.augment.policy = "diffaugment"
  elif variant in ("ada", "ada_full"):
    c.augment.policy = "ada"
    if variant == "ada_full":
      c.data.subset = 0.0
  elif variant != "none":
    raise ValueError(f"Unknown data_efficient.py variant {variant!r}; valid: none, "
                     "diffaugment, ada, ada_full.")
  return c
