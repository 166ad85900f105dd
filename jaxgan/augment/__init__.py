"""Augmentations of every discriminator input, keyed by name: `config.augment.policy`.

Every evaluation of D in the train step (real and generated batches of the D update, the
inputs of its regularizers, the G update) goes through one function, `discriminator_path`
in jaxgan/train_step.py, which applies the configured pipeline there, with its own random
stream. Differentiable augmentations of both real and generated images are what
DiffAugment (Zhao et al. 2020) and ADA (Karras et al. 2020) build on; a gradient penalty
then differentiates through the augmentation w.r.t. the un-augmented images, as
StyleGAN2-ADA does.

An augmentation is `fn(key, images) -> images` on float NHWC images in [-1, 1], registered
under its name by a module of this package (one new file adds one; see
docs/extending.md). `policy` lists them comma-separated, applied in order, each with its
own key; "" is the identity, which draws no randomness and changes no bits.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from jaxgan import rng
from jaxgan.registry import Registry, import_all

Array = jax.Array


class Augmentation(NamedTuple):
  fn: Callable[[Array, Array], Array]   # (key, images) -> images of the same shape


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", "config.augment.policy")


def names_of(policy: str) -> list:
  return [n.strip() for n in policy.split(",") if n.strip()]


def pipeline(policy: str) -> Callable[[Array, Array], Array]:
  """The composed augmentation `(key, images) -> images` of a policy string."""
  augs = [(n, AUGMENTATIONS.get(n)) for n in names_of(policy)]
  if not augs:
    return lambda key, x: x

  def apply(key, x):
    for name, aug in augs:
      x = aug.fn(rng.stream(key, name), x)
    return x
  return apply


import_all(__name__, __path__)
