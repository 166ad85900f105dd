"""Optimizers keyed by `config.optim.{g,d}.name`: separate ones for G and D (TTUR,
Heusel et al. 2017), each with its own learning rate and Adam betas."""
from __future__ import annotations

import optax

from jaxgan.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", "config.optim.g.name / config.optim.d.name")


@OPTIMIZERS.register("adam")
def adam(cfg):
  return optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


@OPTIMIZERS.register("rmsprop")
def rmsprop(cfg):
  # PyTorch's RMSprop (used by the WGAN paper's code): alpha = decay 0.99, eps 1e-8
  # outside the square root.
  return optax.rmsprop(cfg.lr, decay=cfg.decay, eps=cfg.eps, eps_in_sqrt=False)


@OPTIMIZERS.register("sgd")
def sgd(cfg):
  return optax.sgd(cfg.lr, momentum=cfg.momentum or None)


def make(cfg) -> optax.GradientTransformation:
  return OPTIMIZERS.get(cfg.name)(cfg)
