"""The original WGAN with weight clipping (Arjovsky et al. 2017; SEEDS.md section 4).

Critic weights clipped to [-0.01, 0.01] after every critic update (`optim.d.clip`;
`--config.penalty=clip` is the older shorthand for the same), RMSProp 5e-5,
5 critic updates per generator update; the 28x28 model of configs/wgan_gp.py.
"""
from configs import wgan_gp


VARIANTS = wgan_gp.VARIANTS


def get_config(variant: str = "default"):
  c = wgan_gp.get_config(variant)
  c.loss, c.penalty = "wgan", "none"
  c.optim.d.clip = 0.01          # projection of D's optimizer, after every critic update
  for net in ("g", "d"):
    c.optim[net].name, c.optim[net].lr = "rmsprop", 5e-5
  return c
