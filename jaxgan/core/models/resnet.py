"""The SNGAN ResNet generator and discriminator (Miyato et al. 2018, "Spectral
Normalization for Generative Adversarial Networks"; the class-conditional form of Miyato &
Koyama 2018, "cGANs with Projection Discriminator"), as PyTorch-StudioGAN's
`src/models/resnet.py` builds them, so that parameter counts and shapes equal the rows of
its tables (tests/test_resnet.py).

Generator: Linear(z -> 4 x 4 x C0), then up-blocks
    BN, act, nearest x2, conv3x3, BN, act, conv3x3   +   shortcut: nearest x2, conv1x1
and finally BN, act, conv3x3 -> image channels, tanh. Class-conditional models replace the
blocks' BatchNorms by conditional BatchNorm (de Vries et al. 2017): BN without affine
parameters, then x (1 + gain[y]) + bias[y] from two class embeddings. The last BN stays
plain, as in StudioGAN.

Discriminator: an "optimised" first block
    conv3x3, act, conv3x3, avgpool2   +   shortcut: avgpool2, conv1x1
then blocks
    act, conv3x3, act, conv3x3, [avgpool2]   +   shortcut: conv1x1, [avgpool2]
(identity shortcut when neither the size nor the width changes), act, a sum over H and W,
Linear -> 1 logit; labels enter as the projection term <embed(y), phi(x)> (projection) or
an auxiliary classifier without bias (acgan). Spectral norm (config.model.d_spectral_norm)
wraps every conv, linear and the projection embedding of D; without it, D has BatchNorm
where StudioGAN puts it (config.model.d_norm='batch') or none.

Widths per resolution are multiples of `g_base_features` / `d_base_features`
(StudioGAN's g_conv_dim / d_conv_dim, 64 for the CIFAR-10 SNGAN: G 256 wide, D 128 wide).
BatchNorm: eps 1e-4, momentum 0.1 in PyTorch's convention (0.9 here), as StudioGAN.
Weights: `config.model.init='ortho'` is StudioGAN's orthogonal initialisation with zero
biases. The image may have 1 or 3 channels (StudioGAN fixes 3).

Non-square images (config.data.image_size=H,W): the short side picks the row of the tables
(32, 64, ... px) and both sides must be divisible by 2**(up-blocks), so G's first linear map
gives an (H / 2**n) x (W / 2**n) grid at the image's aspect ratio (32x64: 4x8) instead of
4x4 (layers.start_grid); D, convolutions then a sum over H and W, reads any size.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.base.schema import Field, Range
from jaxgan.base.errors import UserError
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L

# Channel multipliers of the generator's stages (the input of each up-block, then the
# output of the last), and of the discriminator's block outputs with their downsampling.
G_WIDTHS = {32: (4, 4, 4, 4), 64: (16, 8, 4, 2, 1), 128: (16, 16, 8, 4, 2, 1),
            256: (16, 16, 8, 8, 4, 2, 1), 512: (16, 16, 8, 8, 4, 2, 1, 1)}
D_WIDTHS = {32: (2, 2, 2, 2), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16),
            256: (1, 2, 4, 8, 8, 16, 16), 512: (1, 1, 2, 4, 8, 8, 16, 16)}
D_DOWN = {32: (True, True, False, False)}  # otherwise every block but the last halves
BN_EPS = 1e-4


def grid(image_shape, name: str = "resnet") -> tuple:
  """(short side, (sh, sw)): the row of the tables and G's start grid (4 on the short side);
  a one-line UserError naming config.data.image_size for a size the tables lack."""
  short = min(image_shape[0], image_shape[1])
  n = len(G_WIDTHS[short]) - 1 if short in G_WIDTHS else None
  sizes = ", ".join(map(str, G_WIDTHS))
  return short, L.start_grid(
      name, image_shape, n, f"builds images whose short side is one of {sizes} px",
      "32 or 32,64 (28 px data is resized to 32 with config.data.image_size=32)")


def d_downsampling(size: int) -> tuple:
  n = len(D_WIDTHS[size])
  return D_DOWN.get(size, tuple(i < n - 1 for i in range(n)))


def upsample2(x):
  """Nearest-neighbour x2 (F.interpolate(scale_factor=2, mode='nearest'))."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def avgpool2(x):
  """2x2 average pooling with stride 2 (nn.AvgPool2d(2))."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def conv(a: int, b: int, k: int, init: str, rngs: nnx.Rngs, spectral: bool = False):
  return L.maybe_spectral(L.Conv2D(a, b, k, padding="SAME", rngs=rngs,
                                   **L.init_kwargs(init, a * k * k)), spectral, rngs)


class BatchNorm(nnx.Module):
  """BatchNorm, or class-conditional BatchNorm when num_classes > 0: normalise without
  affine parameters, then scale by 1 + gain[y] and shift by bias[y]."""

  def __init__(self, features: int, num_classes: int, init: str, *, rngs: nnx.Rngs):
    conditional = num_classes > 0
    self.bn = nnx.BatchNorm(features, momentum=0.9, epsilon=BN_EPS, use_bias=not conditional,
                            use_scale=not conditional, rngs=rngs)
    embed = lambda: nnx.Embed(num_classes, features, rngs=rngs, **L.embed_init(init))
    self.gain = embed() if conditional else None
    self.bias = embed() if conditional else None

  def __call__(self, x, labels, *, train: bool):
    x = self.bn(x, use_running_average=not train)
    if self.gain is None:
      return x
    gain, bias = self.gain(labels), self.bias(labels)
    return x * (1.0 + gain[:, None, None, :]) + bias[:, None, None, :]


class GBlock(nnx.Module):
  def __init__(self, a: int, b: int, num_classes: int, act, init: str, rngs: nnx.Rngs):
    self.act = act
    self.bn1 = BatchNorm(a, num_classes, init, rngs=rngs)
    self.conv1 = conv(a, b, 3, init, rngs)
    self.bn2 = BatchNorm(b, num_classes, init, rngs=rngs)
    self.conv2 = conv(b, b, 3, init, rngs)
    self.shortcut = conv(a, b, 1, init, rngs)

  def __call__(self, x, labels, *, train: bool):
    h = upsample2(self.act(self.bn1(x, labels, train=train)))
    h = self.conv1(h)
    h = self.conv2(self.act(self.bn2(h, labels, train=train)))
    return h + self.shortcut(upsample2(x))


class ResNetGenerator(nnx.Module):
  linear_output = False   # models.build(..., linear_output=True): no tanh (latents)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, base_features: int = 64,
               act: str = "relu", conditioning: str = "none", num_classes: int = 0,
               init: str = "ortho", rngs: nnx.Rngs):
    (size, self.grid), c = grid(image_shape), image_shape[2]
    widths = [base_features * m for m in G_WIDTHS[size]]
    self.latent_dim, self.conditioning = latent_dim, conditioning
    self.c0 = widths[0]
    self.act = L.activation(act)
    classes = num_classes if conditioning != "none" else 0
    area = self.grid[0] * self.grid[1]
    self.linear = nnx.Linear(latent_dim, area * widths[0], rngs=rngs,
                             **L.init_kwargs(init, latent_dim))
    self.blocks = nnx.List([GBlock(a, b, classes, self.act, init, rngs)
                            for a, b in zip(widths[:-1], widths[1:])])
    self.bn = BatchNorm(widths[-1], 0, init, rngs=rngs)
    self.out = conv(widths[-1], c, 3, init, rngs)

  def __call__(self, z, labels=None, *, train: bool):
    L.check_labels(labels, self.conditioning, "generator")
    h = self.linear(z).reshape((z.shape[0], *self.grid, self.c0))
    for block in self.blocks:
      h = block(h, labels, train=train)
    h = self.act(self.bn(h, None, train=train))
    return L.output(self.out(h), self.linear_output)


class DBlock(nnx.Module):
  """A discriminator block; `first` is StudioGAN's DiscOptBlock (no leading activation,
  shortcut pooled before its 1x1 conv)."""

  def __init__(self, a: int, b: int, *, down: bool, first: bool, act, norm: bool,
               spectral: bool, init: str, rngs: nnx.Rngs):
    self.down, self.first, self.act = down, first, act
    self.conv1 = conv(a, b, 3, init, rngs, spectral)
    self.conv2 = conv(b, b, 3, init, rngs, spectral)
    learnable = first or down or a != b
    self.shortcut = conv(a, b, 1, init, rngs, spectral) if learnable else None
    bn = lambda n: nnx.BatchNorm(n, momentum=0.9, epsilon=BN_EPS, rngs=rngs) if norm else None
    self.bn0 = bn(a) if learnable else None
    self.bn1, self.bn2 = bn(b if first else a), bn(b) if not first else None

  def _norm(self, bn, x, train):
    return x if bn is None else bn(x, use_running_average=not train)

  def __call__(self, x, *, train: bool):
    f = lambda layer, v: L.call_layer(layer, v, train=train)
    if self.first:
      h = f(self.conv2, self.act(self._norm(self.bn1, f(self.conv1, x), train)))
      s = f(self.shortcut, self._norm(self.bn0, avgpool2(x), train))
      return avgpool2(h) + s
    h = f(self.conv1, self.act(self._norm(self.bn1, x, train)))
    h = f(self.conv2, self.act(self._norm(self.bn2, h, train)))
    s = x
    if self.shortcut is not None:
      s = f(self.shortcut, self._norm(self.bn0, x, train))
    if self.down:
      h, s = avgpool2(h), (avgpool2(s) if self.shortcut is not None else s)
    return h + s


class ResNetDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], *, base_features: int = 64,
               act: str = "relu", norm: str = "none", spectral_norm: bool = True,
               conditioning: str = "none", num_classes: int = 0, init: str = "ortho",
               attention: int = 0, rngs: nnx.Rngs):
    """`attention` > 0 inserts self-attention after that block (BigGAN: 1)."""
    (size, _), c = grid(image_shape), image_shape[2]
    widths = [base_features * m for m in D_WIDTHS[size]]
    self.act = L.activation(act)
    blocks = []
    for i, (a, b, down) in enumerate(zip([c] + widths[:-1], widths, d_downsampling(size))):
      blocks.append(DBlock(a, b, down=down, first=i == 0, act=self.act,
                           norm=norm == "batch" and not spectral_norm, spectral=spectral_norm,
                           init=init, rngs=rngs))
      if i + 1 == attention:
        blocks.append(L.SelfAttention(b, spectral=spectral_norm, init=init, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.out = L.maybe_spectral(nnx.Linear(widths[-1], 1, rngs=rngs,
                                           **L.init_kwargs(init, widths[-1])),
                                spectral_norm, rngs)
    self.cond = L.DiscriminatorCondition(
        conditioning, num_classes, widths[-1], spectral_norm=spectral_norm,
        spectral_embed=spectral_norm, classifier_bias=False, init=init, rngs=rngs)

  def freeze_units(self):
    """Freeze-D's units from the input: the residual blocks (BigGAN's attention, one)."""
    return [(f"blocks/{i}",) for i in range(len(self.blocks))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], class logits [B, classes] or None)."""
    del rngs  # no dropout in this discriminator
    h = self.cond.input(x, labels)
    for block in self.blocks:
      h = block(h, train=train)
    phi = jnp.sum(self.act(h), axis=(1, 2))
    logits = L.call_layer(self.out, phi, train=train).reshape((x.shape[0],))
    return self.cond.output(logits, phi, labels, train=train)


def build(cfg, image_shape, num_classes, rngs):
  m = cfg.resnet
  cond = dict(conditioning=cfg.conditioning, num_classes=num_classes)
  g = ResNetGenerator(cfg.latent_dim, image_shape, base_features=m.g_base_features,
                      act=cfg.g_act, init=cfg.init, rngs=rngs, **cond)
  d = ResNetDiscriminator(image_shape, base_features=m.d_base_features, act=cfg.d_act,
                          norm=cfg.d_norm, spectral_norm=cfg.d_spectral_norm, init=cfg.init,
                          rngs=rngs, **cond)
  return g, d


def check(cfg, image_shape, name: str = "resnet"):
  grid(image_shape, name)
  if cfg.conditioning == "concat":
    raise UserError(f"config.model.conditioning='concat' is not defined for the {name} "
                    "architecture; use 'projection' (Miyato & Koyama 2018) or 'acgan'.")
  if cfg.g_norm != "batch":
    raise UserError(f"config.model.g_norm={cfg.g_norm!r}: the {name} generator uses "
                    "BatchNorm (class-conditional when conditioned); set it to 'batch'.")
  if cfg.d_norm == "layer" or (cfg.d_norm == "batch" and cfg.d_spectral_norm):
    raise UserError(f"config.model.d_norm={cfg.d_norm!r}: the {name} discriminator takes "
                    "'none', or 'batch' without spectral norm (StudioGAN's D).")
  if cfg.d_dropout:
    raise UserError(f"config.model.d_dropout: the {name} discriminator has no dropout; set "
                    "it to 0.")


ARCHITECTURES.register("resnet", Architecture(build, check=check, fields={
    "g_base_features": Field(64, "G's base width (StudioGAN g_conv_dim; 32 px: 4x wide)",
                             rule=Range(1)),
    "d_base_features": Field(64, "D's base width (StudioGAN d_conv_dim; 32 px: 2x wide)",
                             rule=Range(1)),
}))
