"""Augmentations of every discriminator input, keyed by name: `config.augment.policy`.

Every evaluation of D in the train step (real and generated batches of the D update, the
inputs of its regularizers, the G update) goes through one function, `discriminator_path`
in jaxgan/core/train_step.py, which applies the configured pipeline there, with its own random
stream. Differentiable augmentations of both real and generated images are what
DiffAugment (Zhao et al. 2020) and ADA (Karras et al. 2020) build on; a gradient penalty
then differentiates through the augmentation w.r.t. the un-augmented images, as
StyleGAN2-ADA does.

An augmentation is `fn(key, images) -> images` on float NHWC images in [-1, 1], registered
under its name by a module of this package (one new file adds one; see
docs/extending.md). `policy` lists them comma-separated, applied in order, each with its
own key; "" is the identity, which draws no randomness and changes no bits.

An adaptive augmentation (ADA) is `fn(key, images, p, **settings)`: its strength p is part
of the train state (`TrainState.augment`, adjusted by jaxgan/core/augment/adaptive.py) and
reaches it through the discriminator path; `settings` are the `config.augment` fields it
names (e.g. `ada_ops`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Tuple

import jax

from jaxgan.base import rng
from jaxgan.base.registry import Registry, import_all

Array = jax.Array


class Augmentation(NamedTuple):
  fn: Callable[..., Array]    # (key, images[, p, **settings]) -> images of the same shape
  uses_p: bool = False        # adaptive: takes the state's probability p
  settings: Tuple[str, ...] = ()   # config.augment fields passed as keyword arguments
  # a geometric one: (key, x, like) -> x moved as fn(key, .) moves images of shape `like`
  # (x may be larger: an encoder's view of the same images); None for the others
  replay: Optional[Callable[..., Array]] = None


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", "config.augment.policy")


def names_of(policy: str) -> list:
  return [n.strip() for n in policy.split(",") if n.strip()]


def uses_p(policy: str) -> bool:
  """Whether the policy has an adaptive augmentation (whose p lives in the state)."""
  return any(AUGMENTATIONS.get(n).uses_p for n in names_of(policy))


def pipeline(policy: str, settings=None) -> Callable[..., Array]:
  """The composed augmentation `(key, images, p=None) -> images` of a policy string;
  `settings` (config.augment) supplies the fields adaptive augmentations name."""
  augs = [(n, AUGMENTATIONS.get(n)) for n in names_of(policy)]
  if not augs:
    return lambda key, x, p=None: x

  def apply(key, x, p: Optional[Array] = None):
    for name, aug in augs:
      k = rng.stream(key, name)
      if aug.uses_p:
        kw = {s: (settings or {}).get(s) for s in aug.settings if s in (settings or {})}
        x = aug.fn(k, x, p, **kw)
      else:
        x = aug.fn(k, x)
    return x
  return apply


def geometry(policy: str) -> Callable[..., Array]:
  """`(key, x, like) -> x` with only the geometric steps of the policy's pipeline (same
  keys, same order), made on `x` as they were on the images of shape `like`; the colour,
  cutout and other steps are left out. GAT's REPA (policy 'translation,flip' on the
  encoder's input) uses it. Refuses a policy with an adaptive augmentation, whose
  geometry depends on p and is not replayed."""
  augs = [(n, AUGMENTATIONS.get(n)) for n in names_of(policy)]
  bad = [n for n, a in augs if a.uses_p]
  if bad:
    raise ValueError(f"augmentation(s) {', '.join(bad)} cannot be replayed on another view")

  def apply(key, x, like):
    for name, aug in augs:
      if aug.replay is not None:
        x = aug.replay(rng.stream(key, name), x, like)
    return x
  return apply


import_all(__name__, __path__)
