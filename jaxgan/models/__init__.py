"""Architectures, keyed by `config.model.arch`.

An architecture is a function (model_config, image_shape, num_classes, rngs) -> (G, D).
G(z, labels, train=...) returns images in [-1, 1] (NHWC); D(x, labels, train=..., rngs=key)
returns (one logit per example, class logits or None). Register a new one with `@ARCHITECTURES.register("name")`.
"""
from __future__ import annotations

from typing import Callable, Tuple

from flax import nnx

from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import CONDITIONINGS, check_conditioning
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.registry import Registry

ArchFn = Callable[..., Tuple[nnx.Module, nnx.Module]]
ARCHITECTURES: Registry[ArchFn] = Registry("architecture", "config.model.arch")


@ARCHITECTURES.register("mlp")
def mlp(cfg, image_shape, num_classes, rngs):
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  g = MLPGenerator(cfg.latent_dim, tuple(cfg.g_widths), image_shape, act=cfg.g_act,
                   norm=cfg.g_norm, embed_dim=cfg.embed_dim, init=cfg.init, rngs=rngs, **cond)
  d = MLPDiscriminator(image_shape, tuple(cfg.d_widths), act=cfg.d_act, dropout=cfg.d_dropout,
                       spectral_norm=cfg.d_spectral_norm, init=cfg.init, rngs=rngs, **cond)
  return g, d


@ARCHITECTURES.register("dcgan")
def dcgan(cfg, image_shape, num_classes, rngs):
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  g = DCGANGenerator(cfg.latent_dim, image_shape, base_features=cfg.g_base_features,
                     start_size=cfg.start_size, stem=cfg.g_stem, upsample=cfg.upsample,
                     act=cfg.g_act, norm=cfg.g_norm, embed_dim=cfg.embed_dim, init=cfg.init,
                     rngs=rngs, **cond)
  d = DCGANDiscriminator(image_shape, base_features=cfg.d_base_features,
                         start_size=cfg.start_size, head=cfg.d_head, act=cfg.d_act,
                         norm=cfg.d_norm, dropout=cfg.d_dropout,
                         spectral_norm=cfg.d_spectral_norm, init=cfg.init, rngs=rngs, **cond)
  return g, d


def build(model_cfg, image_shape, num_classes: int, seed: int):
  """Builds (G, D) for `model_cfg`; num_classes is used by conditional models only."""
  check_conditioning(model_cfg.conditioning, num_classes if model_cfg.conditioning != "none"
                     else 2)
  arch = ARCHITECTURES.get(model_cfg.arch)
  return arch(model_cfg, tuple(image_shape), num_classes, nnx.Rngs(params=seed))
