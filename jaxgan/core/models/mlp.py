"""Fully connected GAN (Goodfellow et al. 2014), as in the MNIST / Fashion-MNIST tutorials.

Images are flattened to H*W*C, the generator ends in tanh (data in [-1, 1]) and the
discriminator returns one logit per example (the sigmoid lives in the loss, where it is
numerically stable), plus class logits for an AC-GAN. Conditioning: see
`layers.GeneratorCondition` / `layers.DiscriminatorCondition`. Any H x W, square or not
(config.data.image_size=H,W): the pixels are flattened, so nothing depends on the shape.
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from flax import nnx

from jaxgan.base.schema import Field
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L


class MLPGenerator(nnx.Module):
  linear_output = False   # models.build(..., linear_output=True): no tanh (latents)

  def __init__(self, latent_dim: int, widths: Sequence[int], image_shape: Sequence[int], *,
               act: str = "relu", norm: str = "none", conditioning: str = "none",
               num_classes: int = 0, embed_dim: int = 32, init: str = "pytorch",
               rngs: nnx.Rngs):
    self.latent_dim = latent_dim
    self.image_shape = tuple(image_shape)
    self.act = L.activation(act)
    self.cond = L.GeneratorCondition(conditioning, num_classes, embed_dim, rngs=rngs)
    dims = [latent_dim + self.cond.dim, *widths]
    self.hidden = nnx.List([nnx.Linear(a, b, use_bias=norm != "batch", rngs=rngs,
                                       **L.init_kwargs(init, a))
                            for a, b in zip(dims[:-1], dims[1:])])
    self.norms = nnx.List([L.Norm(norm, b, spatial=False, rngs=rngs) for b in widths])
    self.out = nnx.Linear(dims[-1], int(np.prod(image_shape)), rngs=rngs,
                          **L.init_kwargs(init, dims[-1]))

  def __call__(self, z, labels=None, *, train: bool):
    h = self.cond(z, labels)
    for lin, norm in zip(self.hidden, self.norms):
      h = self.act(norm(lin(h), train=train))
    x = L.output(self.out(h), self.linear_output)
    return x.reshape((z.shape[0], *self.image_shape))


class MLPDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], widths: Sequence[int], *,
               act: str = "leaky_relu", dropout: float = 0.0, spectral_norm: bool = False,
               conditioning: str = "none", num_classes: int = 0, init: str = "pytorch",
               rngs: nnx.Rngs):
    self.act = L.activation(act)
    self.cond = L.DiscriminatorCondition(conditioning, num_classes, widths[-1],
                                         spectral_norm=spectral_norm, rngs=rngs)
    dims = [int(np.prod(image_shape)) + self.cond.input_dim, *widths]
    self.hidden = nnx.List([
        L.maybe_spectral(nnx.Linear(a, b, rngs=rngs, **L.init_kwargs(init, a)),
                         spectral_norm, rngs)
        for a, b in zip(dims[:-1], dims[1:])])
    self.dropout = L.Dropout(dropout) if dropout > 0 else None
    self.out = L.maybe_spectral(
        nnx.Linear(dims[-1], 1, rngs=rngs, **L.init_kwargs(init, dims[-1])), spectral_norm, rngs)

  def freeze_units(self):
    """Freeze-D's units from the input: the hidden layers."""
    return [(f"hidden/{i}",) for i in range(len(self.hidden))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], class logits [B, classes] or None)."""
    h = self.cond.input(x.reshape((x.shape[0], -1)), labels)
    for i, lin in enumerate(self.hidden):
      h = self.act(L.call_layer(lin, h, train=train))
      if self.dropout is not None:
        h = self.dropout(h, deterministic=not train,
                         rngs=None if rngs is None else jax.random.fold_in(rngs, i))
    logits = L.call_layer(self.out, h, train=train)[:, 0]
    return self.cond.output(logits, h, labels, train=train)


def build(cfg, image_shape, num_classes, rngs):
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  m = cfg.mlp
  g = MLPGenerator(cfg.latent_dim, tuple(m.g_widths), image_shape, act=cfg.g_act,
                   norm=cfg.g_norm, embed_dim=cfg.embed_dim, init=cfg.init, rngs=rngs, **cond)
  d = MLPDiscriminator(image_shape, tuple(m.d_widths), act=cfg.d_act, dropout=cfg.d_dropout,
                       spectral_norm=cfg.d_spectral_norm, init=cfg.init, rngs=rngs, **cond)
  return g, d


def widths_problem(v):
  if not v or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
    return "must be a non-empty tuple of positive integers, e.g. (256, 256)"
  return None


ARCHITECTURES.register("mlp", Architecture(build, {
    "g_widths": Field((256, 512, 1024), "hidden widths of G", rule=widths_problem),
    "d_widths": Field((1024, 512, 256), "hidden widths of D", rule=widths_problem),
}))
