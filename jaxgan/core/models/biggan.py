"""BigGAN (Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis") as PyTorch-StudioGAN's `src/models/big_resnet.py` builds it, so parameter
counts equal its CIFAR-10 networks (tests/test_biggan.py).

Generator: z is split into one chunk per up-block plus one (hierarchical latents); the
first chunk feeds an SN linear map to 4 x 4 x C0, every other chunk joins a shared class
embedding (no spectral norm) as the input of the block's conditional BatchNorms:
normalise without affine parameters, then x (1 + gain(y)) + bias(y) with gain and bias
SN linear maps without bias. Up-blocks as SNGAN's (BN, act, nearest x2, conv3x3, BN, act,
conv3x3; shortcut x2 then conv1x1), self-attention (SAGAN) after block `g_attention`, then
BN, act, conv3x3, tanh. Spectral norm on every layer of G (config.model.biggan
.g_spectral_norm) and of D (config.model.d_spectral_norm). Unconditional models feed the
z chunks alone to the conditional BatchNorms.

Discriminator: the SNGAN ResNet discriminator (jaxgan/core/models/resnet.py) with self-attention
after block `d_attention`; projection or AC head. CIFAR-10 (StudioGAN's BigGAN.yaml): z 80
(4 chunks of 20), shared embedding 128, g_conv_dim = d_conv_dim = 96 (G 384 wide, D 192),
attention at 16 x 16 in both, orthogonal initialisation, hinge loss, 5 D steps.

Non-square images (config.data.image_size=H,W), as the SNGAN ResNet's: the short side picks
the row of resnet.G_WIDTHS, and the first linear map gives an (H / 2**n) x (W / 2**n) grid
at the image's aspect ratio (32x64: 4x8) instead of 4x4 (resnet.grid).
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxgan.base.schema import Field, Range
from jaxgan.base.errors import UserError
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L
from jaxgan.core.models import resnet as R


class ClassBatchNorm(nnx.Module):
  """BatchNorm whose scale and shift are linear maps of a conditioning vector."""

  def __init__(self, features: int, cond_dim: int, *, spectral: bool, init: str,
               rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(features, momentum=0.9, epsilon=R.BN_EPS, use_bias=False,
                            use_scale=False, rngs=rngs)
    lin = lambda: L.maybe_spectral(nnx.Linear(cond_dim, features, use_bias=False, rngs=rngs,
                                              **L.init_kwargs(init, cond_dim)), spectral, rngs)
    self.gain, self.bias = lin(), lin()

  def __call__(self, x, cond, *, train: bool):
    x = self.bn(x, use_running_average=not train)
    gain = L.call_layer(self.gain, cond, train=train)[:, None, None, :]
    bias = L.call_layer(self.bias, cond, train=train)[:, None, None, :]
    return x * (1.0 + gain) + bias


class GBlock(nnx.Module):
  def __init__(self, a: int, b: int, cond_dim: int, act, *, spectral: bool, init: str,
               rngs: nnx.Rngs):
    self.act = act
    self.bn1 = ClassBatchNorm(a, cond_dim, spectral=spectral, init=init, rngs=rngs)
    self.conv1 = R.conv(a, b, 3, init, rngs, spectral)
    self.bn2 = ClassBatchNorm(b, cond_dim, spectral=spectral, init=init, rngs=rngs)
    self.conv2 = R.conv(b, b, 3, init, rngs, spectral)
    self.shortcut = R.conv(a, b, 1, init, rngs, spectral)

  def __call__(self, x, cond, *, train: bool):
    f = lambda layer, v: L.call_layer(layer, v, train=train)
    h = f(self.conv1, R.upsample2(self.act(self.bn1(x, cond, train=train))))
    h = f(self.conv2, self.act(self.bn2(h, cond, train=train)))
    return h + f(self.shortcut, R.upsample2(x))


class BigGANGenerator(nnx.Module):
  linear_output = False   # models.build(..., linear_output=True): no tanh (latents)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, base_features: int = 96,
               shared_dim: int = 128, attention: int = 2, spectral_norm: bool = True,
               act: str = "relu", conditioning: str = "none", num_classes: int = 0,
               init: str = "ortho", rngs: nnx.Rngs):
    (size, self.grid), c = R.grid(image_shape, "biggan"), image_shape[2]
    widths = [base_features * m for m in R.G_WIDTHS[size]]
    self.n_chunks = len(widths)        # one per up-block, plus the first linear map
    self.chunk = latent_dim // self.n_chunks
    self.conditioning, self.c0, self.attention = conditioning, widths[0], attention
    self.act = L.activation(act)
    conditional = conditioning != "none"
    self.shared = (nnx.Embed(num_classes, shared_dim, rngs=rngs, **L.embed_init(init))
                   if conditional else None)
    cond_dim = self.chunk + (shared_dim if conditional else 0)
    area = self.grid[0] * self.grid[1]
    self.linear = L.maybe_spectral(nnx.Linear(self.chunk, area * widths[0], rngs=rngs,
                                              **L.init_kwargs(init, self.chunk)),
                                   spectral_norm, rngs)
    blocks = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
      blocks.append(GBlock(a, b, cond_dim, self.act, spectral=spectral_norm, init=init,
                           rngs=rngs))
      if i + 1 == attention:
        blocks.append(L.SelfAttention(b, spectral=spectral_norm, init=init, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.bn = nnx.BatchNorm(widths[-1], momentum=0.9, epsilon=R.BN_EPS, rngs=rngs)
    self.out = R.conv(widths[-1], c, 3, init, rngs, spectral_norm)

  def __call__(self, z, labels=None, *, train: bool):
    L.check_labels(labels, self.conditioning, "generator")
    f = lambda layer, v: L.call_layer(layer, v, train=train)
    zs = jnp.split(z, self.n_chunks, axis=-1)
    h = f(self.linear, zs[0]).reshape((z.shape[0], *self.grid, self.c0))
    y = None if self.shared is None else self.shared(labels)
    chunks = iter(zs[1:])
    for block in self.blocks:
      if isinstance(block, L.SelfAttention):
        h = block(h, train=train)
        continue
      zc = next(chunks)
      h = block(h, zc if y is None else jnp.concatenate([zc, y], axis=-1), train=train)
    h = self.act(self.bn(h, use_running_average=not train))
    return L.output(f(self.out, h), self.linear_output)


def build(cfg, image_shape, num_classes, rngs):
  m = cfg.biggan
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  g = BigGANGenerator(cfg.latent_dim, image_shape, base_features=m.g_base_features,
                      shared_dim=m.shared_dim, attention=m.g_attention,
                      spectral_norm=m.g_spectral_norm, act=cfg.g_act, init=cfg.init,
                      rngs=rngs, **cond)
  d = R.ResNetDiscriminator(image_shape, base_features=m.d_base_features, act=cfg.d_act,
                            norm=cfg.d_norm, spectral_norm=cfg.d_spectral_norm, init=cfg.init,
                            attention=m.d_attention, rngs=rngs, **cond)
  return g, d


def check(cfg, image_shape):
  R.check(cfg, image_shape, "biggan")   # sizes, conditioning, norms: as the SNGAN ResNet
  size, m = min(image_shape[0], image_shape[1]), cfg.biggan
  n = len(R.G_WIDTHS[size])
  if cfg.latent_dim % n:
    raise UserError(f"config.model.latent_dim={cfg.latent_dim}: BigGAN splits z into {n} "
                    f"equal chunks at {size} px (one per up-block plus one); use a "
                    f"multiple of {n}, e.g. {n * 20}.")
  if m.g_attention > n - 1 or m.d_attention > len(R.D_WIDTHS[size]):
    raise UserError(f"config.model.biggan.g_attention={m.g_attention} / d_attention="
                    f"{m.d_attention}: at {size} px G has {n - 1} blocks and D "
                    f"{len(R.D_WIDTHS[size])}; 0 turns attention off.")


ARCHITECTURES.register("biggan", Architecture(build, check=check, fields={
    "g_base_features": Field(96, "G's base width (StudioGAN g_conv_dim)", rule=Range(1)),
    "d_base_features": Field(96, "D's base width (StudioGAN d_conv_dim)", rule=Range(1)),
    "shared_dim": Field(128, "shared class embedding joined to each z chunk", rule=Range(1)),
    "g_attention": Field(2, "self-attention after this G block (0: none)", rule=Range(0)),
    "d_attention": Field(1, "self-attention after this D block (0: none)", rule=Range(0)),
    "g_spectral_norm": Field(True, "spectral norm on every layer of G"),
}))
