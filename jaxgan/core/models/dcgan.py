"""DCGAN generator and discriminator (Radford et al. 2016), resolution-generic.

The image side must be s0 * 2**n with s0 in {4, 7} or any other small start size
(64 = 4 * 2**4, 32 = 4 * 2**3, 28 = 7 * 2**2). Two stems for G and two heads for D:

* stem "convt" (SEEDS.md section 2): z as a 1x1 map, ConvT(k=s0, valid) -> s0 x s0.
  stem "dense" (the small 28x28 WGAN-GP): Dense(s0*s0*C, no bias), BatchNorm over the
  flat features, reshape.
* head "conv": Conv(1, k=s0, valid) -> 1x1 logit; head "dense": flatten, Dense(1).

Non-square images (config.data.image_size=H,W): the short side follows the rule above and
both sides must be divisible by 2**n, so the stem and the head work at the image's aspect
ratio, an (H / 2**n) x (W / 2**n) grid (32x64 with start 4: a 4x8 ConvT kernel and conv
head), and every layer between is the square network's (layers.start_grid).

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
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L


def steps(side: int, start_size: int) -> int | None:
  """Number of x2 resolution steps between start_size and the short side; None if none."""
  n = math.log2(side / start_size) if side % start_size == 0 else -1
  return int(n) if n >= 1 and n == int(n) else None


def plan(image_shape: Sequence[int], start_size: int) -> tuple:
  """(n, (sh, sw)): x2 steps and the stem's / head's grid (start_size on the short side);
  a one-line UserError (a ValueError) for a size DCGAN cannot build."""
  short = min(image_shape[0], image_shape[1])
  n = steps(short, start_size)
  a = start_size * 2 ** max(1, round(math.log2(max(short / start_size, 1))))
  grid = L.start_grid(
      "dcgan", image_shape, n, "needs image_size = start_size * 2**n (n >= 1) on the short "
      f"side, config.model.dcgan.start_size={start_size}", f"{a} or {a},{2 * a} (28 with "
      "start 7, 32/64 with start 4), or set config.model.dcgan.start_size")
  return n, grid


class DCGANGenerator(nnx.Module):
  linear_output = False   # models.build(..., linear_output=True): no tanh (latents)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, base_features: int = 64,
               start_size: int = 4, stem: str = "convt", upsample: str = "transpose",
               act: str = "leaky_relu", norm: str = "batch", conditioning: str = "none",
               num_classes: int = 0, embed_dim: int = 32, init: str = "pytorch",
               rngs: nnx.Rngs):
    c = image_shape[2]
    if stem not in ("convt", "dense"):
      raise ValueError(f"Unknown generator stem {stem!r}; valid: convt, dense.")
    if upsample not in ("transpose", "resize"):
      raise ValueError(f"Unknown upsample {upsample!r}; valid: transpose, resize.")
    n_up, grid = plan(image_shape, start_size)
    self.latent_dim = latent_dim
    self.grid, self.stem, self.upsample = grid, stem, upsample
    self.act = L.activation(act)
    self.cond = L.GeneratorCondition(conditioning, num_classes, embed_dim, rngs=rngs)
    in_dim = latent_dim + self.cond.dim
    feats = [base_features * 2 ** i for i in reversed(range(n_up))]  # e.g. 512..64
    bias = norm != "batch"
    self.stem_features, area = feats[0], grid[0] * grid[1]
    if stem == "convt":
      self.stem_layer = L.ConvTranspose2D(
          in_dim, feats[0], grid, padding="VALID", use_bias=bias,
          rngs=rngs, **L.init_kwargs(init, in_dim * area, transpose_fan_in=feats[0] * area))
      self.stem_norm = L.Norm(norm, feats[0], spatial=True, rngs=rngs)
    else:
      n = area * feats[0]
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
    b = z.shape[0]
    if self.stem == "convt":
      h = self.stem_layer(h.reshape((b, 1, 1, -1)))
      h = self.act(self.stem_norm(h, train=train))
    else:
      h = self.act(self.stem_norm(self.stem_layer(h), train=train))
      h = h.reshape((b, *self.grid, self.stem_features))
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
    c = image_shape[2]
    if head not in ("conv", "dense"):
      raise ValueError(f"Unknown discriminator head {head!r}; valid: conv, dense.")
    n_down, grid = plan(image_shape, start_size)
    area = grid[0] * grid[1]
    self.head = head
    self.act = L.activation(act)
    feats = [base_features * 2 ** i for i in range(n_down)]  # e.g. 64..512
    self.cond = L.DiscriminatorCondition(conditioning, num_classes, area * feats[-1],
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
      out = L.Conv2D(feats[-1], 1, grid, padding="VALID", rngs=rngs,
                     **L.init_kwargs(init, feats[-1] * area))
    else:
      n = area * feats[-1]
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
  plan(image_shape, cfg.dcgan.start_size)   # a one-line UserError for a size it cannot build


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
