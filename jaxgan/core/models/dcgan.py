"""DCGAN generator and discriminator (Radford et al. 2016), resolution-generic.

The image side must be s0 * 2**n with s0 in {4, 7} or any other small start size
(64 = 4 * 2**4, 32 = 4 * 2**3, 28 = 7 * 2**2). Two stems for G and two heads for D:

* stem "convt" (SEEDS.md section 2): z as a 1x1 map, ConvT(k=s0, valid) -> s0 x s0.
  stem "dense" (the small 28x28 WGAN-GP): Dense(s0*s0*C, no bias), BatchNorm over the
  flat features, reshape.
* head "conv": Conv(1, k=s0, valid) -> 1x1 logit; head "dense": flatten, Dense(1).

Upsampling is ConvT(k4, s2, same) or, with `upsample="resize"`, nearest-neighbour x2 followed
by Conv(k4, s1, same) (Odena et al. 2016, "Deconvolution and checkerboard artifacts").
Convolutions are `layers.Conv2D` / `layers.ConvTranspose2D`, whose backward passes (of any
order: the gradient penalty differentiates twice) avoid XLA:CPU's slow dilated kernels.
Layers followed by BatchNorm have no bias; every other layer has one. Channel widths
double as resolution halves: base, 2*base, 4*base, ...
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.base.schema import Field, OneOf, Range
from jaxgan.base.errors import UserError
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L


def plan(image_size: int, start_size: int) -> int:
  """Number of x2 resolution steps between start_size and image_size."""
  n = math.log2(image_size / start_size) if image_size % start_size == 0 else -1
  if n < 1 or n != int(n):
    raise ValueError(
        f"DCGAN needs image_size = start_size * 2**n with n >= 1; got image_size="
        f"{image_size}, start_size={start_size}. Use e.g. 28 with start 7, or 32/64 with "
        "start 4 (config.model.start_size).")
  return int(n)


class DCGANGenerator(nnx.Module):
  linear_output = False   # models.build(..., linear_output=True): no tanh (latents)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, base_features: int = 64,
               start_size: int = 4, stem: str = "convt", upsample: str = "transpose",
               act: str = "leaky_relu", norm: str = "batch", conditioning: str = "none",
               num_classes: int = 0, embed_dim: int = 32, init: str = "pytorch",
               rngs: nnx.Rngs):
    h, w, c = image_shape
    if h != w:
      raise ValueError(f"DCGAN expects square images, got {h}x{w}.")
    if stem not in ("convt", "dense"):
      raise ValueError(f"Unknown generator stem {stem!r}; valid: convt, dense.")
    if upsample not in ("transpose", "resize"):
      raise ValueError(f"Unknown upsample {upsample!r}; valid: transpose, resize.")
    n_up = plan(h, start_size)
    self.latent_dim = latent_dim
    self.start_size, self.stem, self.upsample = start_size, stem, upsample
    self.act = L.activation(act)
    self.cond = L.GeneratorCondition(conditioning, num_classes, embed_dim, rngs=rngs)
    in_dim = latent_dim + self.cond.dim
    feats = [base_features * 2 ** i for i in reversed(range(n_up))]  # e.g. 512..64
    bias = norm != "batch"
    self.stem_features = feats[0]
    if stem == "convt":
      self.stem_layer = L.ConvTranspose2D(
          in_dim, feats[0], start_size, padding="VALID", use_bias=bias,
          rngs=rngs, **L.init_kwargs(init, in_dim * start_size ** 2,
                                     transpose_fan_in=feats[0] * start_size ** 2))
      self.stem_norm = L.Norm(norm, feats[0], spatial=True, rngs=rngs)
    else:
      n = start_size * start_size * feats[0]
      self.stem_layer = nnx.Linear(in_dim, n, use_bias=bias, rngs=rngs,
                                   **L.init_kwargs(init, in_dim))
      self.stem_norm = L.Norm(norm, n, spatial=False, rngs=rngs)
    ups, norms = [], []
    for a, b in zip(feats, feats[1:] + [c]):
      last = len(ups) == n_up - 1
      if upsample == "transpose":
        ups.append(L.ConvTranspose2D(a, b, 4, stride=2, padding="SAME",
                                     use_bias=bias or last, rngs=rngs,
                                     **L.init_kwargs(init, a * 16, transpose_fan_in=b * 16)))
      else:
        ups.append(L.Conv2D(a, b, 4, padding="SAME", use_bias=bias or last, rngs=rngs,
                            **L.init_kwargs(init, a * 16)))
      if not last:
        norms.append(L.Norm(norm, b, spatial=True, rngs=rngs))
    self.ups, self.norms = nnx.List(ups), nnx.List(norms)

  def __call__(self, z, labels=None, *, train: bool):
    h = self.cond(z, labels)
    b, s = z.shape[0], self.start_size
    if self.stem == "convt":
      h = self.stem_layer(h.reshape((b, 1, 1, -1)))
      h = self.act(self.stem_norm(h, train=train))
    else:
      h = self.act(self.stem_norm(self.stem_layer(h), train=train))
      h = h.reshape((b, s, s, self.stem_features))
    for i, up in enumerate(self.ups):
      if self.upsample == "resize":
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = up(h)
      if i < len(self.norms):
        h = self.act(self.norms[i](h, train=train))
    return L.output(h, self.linear_output)


class DCGANDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], *, base_features: int = 64,
               start_size: int = 4, head: str = "conv", act: str = "leaky_relu",
               norm: str = "batch", dropout: float = 0.0, spectral_norm: bool = False,
               conditioning: str = "none", num_classes: int = 0, init: str = "pytorch",
               rngs: nnx.Rngs):
    h, w, c = image_shape
    if head not in ("conv", "dense"):
      raise ValueError(f"Unknown discriminator head {head!r}; valid: conv, dense.")
    n_down = plan(h, start_size)
    self.head = head
    self.act = L.activation(act)
    feats = [base_features * 2 ** i for i in range(n_down)]  # e.g. 64..512
    self.cond = L.DiscriminatorCondition(conditioning, num_classes,
                                         start_size * start_size * feats[-1],
                                         spectral_norm=spectral_norm, rngs=rngs)
    bias = norm != "batch"
    convs, norms = [], []
    for i, (a, b) in enumerate(zip([c + self.cond.input_dim] + feats[:-1], feats)):
      convs.append(L.maybe_spectral(
          L.Conv2D(a, b, 4, stride=2, padding="SAME", use_bias=bias, rngs=rngs,
                   **L.init_kwargs(init, a * 16)),
          spectral_norm, rngs))
      # The first layer sees raw pixels: no normalisation there (Radford et al. 2016).
      norms.append(L.Norm(norm if i > 0 else "none", b, spatial=True, rngs=rngs))
    self.convs, self.norms = nnx.List(convs), nnx.List(norms)
    self.dropout = L.Dropout(dropout) if dropout > 0 else None
    if head == "conv":
      out = L.Conv2D(feats[-1], 1, start_size, padding="VALID", rngs=rngs,
                     **L.init_kwargs(init, feats[-1] * start_size ** 2))
    else:
      n = start_size * start_size * feats[-1]
      out = nnx.Linear(n, 1, rngs=rngs, **L.init_kwargs(init, n))
    self.out = L.maybe_spectral(out, spectral_norm, rngs)

  def freeze_units(self):
    """Freeze-D's units from the input: conv i with its norm."""
    return [(f"convs/{i}", f"norms/{i}") for i in range(len(self.convs))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], class logits [B, classes] or None)."""
    h = self.cond.input(x, labels)
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      h = self.act(norm(L.call_layer(conv, h, train=train), train=train))
      if self.dropout is not None:
        h = self.dropout(h, deterministic=not train,
                         rngs=None if rngs is None else jax.random.fold_in(rngs, i))
    phi = h
    if self.head == "dense":
      h = h.reshape((h.shape[0], -1))
    logits = L.call_layer(self.out, h, train=train).reshape((h.shape[0],))
    return self.cond.output(logits, phi, labels, train=train)


def build(cfg, image_shape, num_classes, rngs):
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  m = cfg.dcgan
  g = DCGANGenerator(cfg.latent_dim, image_shape, base_features=m.g_base_features,
                     start_size=m.start_size, stem=m.g_stem, upsample=m.upsample,
                     act=cfg.g_act, norm=cfg.g_norm, embed_dim=cfg.embed_dim, init=cfg.init,
                     rngs=rngs, **cond)
  d = DCGANDiscriminator(image_shape, base_features=m.d_base_features,
                         start_size=m.start_size, head=m.d_head, act=cfg.d_act,
                         norm=cfg.d_norm, dropout=cfg.d_dropout,
                         spectral_norm=cfg.d_spectral_norm, init=cfg.init, rngs=rngs, **cond)
  return g, d


def check(cfg, image_shape):
  h, w, _ = image_shape
  if h != w:
    raise UserError(f"DCGAN expects square images, got {h}x{w}.")
  try:
    plan(h, cfg.dcgan.start_size)
  except ValueError as e:
    raise UserError(f"{e} (config.data.image_size, config.model.dcgan.start_size)") from None


ARCHITECTURES.register("dcgan", Architecture(build, check=check, fields={
    "g_base_features": Field(64, "G's channels at the last upsampling (doubled per step up)",
                             rule=Range(1)),
    "d_base_features": Field(64, "D's channels after the first conv (doubled per step down)",
                             rule=Range(1)),
    "start_size": Field(4, "image_size = start_size * 2**n (7 for 28 px)", rule=Range(1)),
    "g_stem": Field("convt", "generator stem: 1x1 -> start_size", rule=OneOf(("convt", "dense"))),
    "d_head": Field("conv", "discriminator head", rule=OneOf(("conv", "dense"))),
    "upsample": Field("transpose", "transposed conv, or nearest x2 + conv",
                      rule=OneOf(("transpose", "resize"))),
}))
