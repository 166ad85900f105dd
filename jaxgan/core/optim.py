"""Optimizers keyed by `config.optim.{g,d}.name`: separate ones for G and D (TTUR,
Heusel et al. 2017), each with its own learning rate and Adam betas, and optionally
global-norm gradient clipping before the update (`grad_clip`; GAT clips both at 1.0).

Hyperparameters are injected (optax.inject_hyperparams): they live in the optimizer state
as arrays, so a population of runs with different learning rates or betas is one
vmapped program (jaxgan.run.population), and a checkpoint records them."""
from __future__ import annotations

import functools

import optax

from jaxgan.base.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", "config.optim.g.name / config.optim.d.name")


def _clipped(factory, max_norm: float):
  """`factory` preceded by optax.clip_by_global_norm(max_norm) when max_norm > 0. Inside
  inject_hyperparams, so the state keeps `.hyperparams` outermost (schedules and
  populations set them there) and an unclipped optimizer's state is unchanged."""
  if max_norm <= 0:
    return factory

  @functools.wraps(factory)
  def clipped(*args, **kwargs):
    return optax.chain(optax.clip_by_global_norm(max_norm), factory(*args, **kwargs))
  return clipped


@OPTIMIZERS.register("adam")
def adam(cfg):
  return optax.inject_hyperparams(_clipped(optax.adam, cfg.grad_clip))(
      learning_rate=cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


@OPTIMIZERS.register("adamw")
def adamw(cfg):
  # decoupled weight decay (Loshchilov & Hutter 2019), as torch.optim.AdamW: the decay is
  # scaled by the learning rate
  return optax.inject_hyperparams(_clipped(optax.adamw, cfg.grad_clip))(
      learning_rate=cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(cfg):
  # PyTorch's RMSprop (used by the WGAN paper's code): alpha = decay 0.99, eps 1e-8
  # outside the square root.
  return optax.inject_hyperparams(_clipped(optax.rmsprop, cfg.grad_clip),
                                  static_args=("eps_in_sqrt",))(
      learning_rate=cfg.lr, decay=cfg.decay, eps=cfg.eps, eps_in_sqrt=False)


@OPTIMIZERS.register("sgd")
def sgd(cfg):
  sgd_fn = _clipped(optax.sgd, cfg.grad_clip)
  if cfg.momentum:
    return optax.inject_hyperparams(sgd_fn)(learning_rate=cfg.lr, momentum=cfg.momentum)
  return optax.inject_hyperparams(sgd_fn, static_args=("momentum",))(
      learning_rate=cfg.lr, momentum=None)


def make(cfg) -> optax.GradientTransformation:
  return OPTIMIZERS.get(cfg.name)(cfg)


def projection(cfg, penalty: str = "none", clip_value: float = 0.0):
  """The projection applied to a network's parameters after each update, or None.

  `cfg.clip > 0` (or the older `config.penalty="clip"` shorthand with `clip_value`) clips
  every weight into [-c, c]: the original WGAN's Lipschitz constraint (Arjovsky et al.
  2017), as optax's L-infinity ball projection."""
  c = float(cfg.clip) or (float(clip_value) if penalty == "clip" else 0.0)
  if c <= 0:
    return None
  return lambda params: optax.projections.projection_linf_ball(params, scale=c)
