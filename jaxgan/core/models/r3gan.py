"""The R3GAN backbone (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A
Modern GAN Baseline"), as the authors' code builds it (github.com/brownvc/R3GAN,
R3GAN/Networks.py): a ResNet without normalization, made stable by its initialisation.

Residual block (both networks): x + W3 act(W2 act(W1 x)), W1 a 1x1 conv C -> E C, W2 a
grouped 3x3 conv (`cardinality` groups), W3 a 1x1 conv back to C; convs have no bias, each
activation is a leaky ReLU (0.2) after a learned bias. Fix-up style initialisation
(Zhang et al. 2019): weights ~ N(0, gain / sqrt(fan_in)) with gain = sqrt(2 / (1 + 0.2^2))
L^(-1/4) for W1 and W2 (L = the number of blocks of the network) and W3 = 0, so every
block starts as the identity.

Generator: a learned 4x4 basis (N(0, 1)) scaled per channel by a linear map of
[z, embed(y)]; stages of blocks at 4, 8, ... px, each after a bilinear x2 upsampling
([1, 3, 3, 1] FIR; a 1x1 conv first when the width changes); a 1x1 conv to the image
channels, with no tanh (as the reference: images are clipped when converted to pixels).
Discriminator: a 1x1 conv from the image, stages of blocks each followed by a bilinear /2
downsampling (then a 1x1 conv when the width changes), and at 4x4 a depthwise 4x4 conv and
a linear map to one logit, or, for class-conditional models, to a vector whose inner
product with embed(y) is the logit. The discriminator's widths and cardinalities are the
generator's in reverse.

Non-square images (config.data.image_size=H,W): the short side is 4 * 2**(stages - 1) and
both sides are divisible by 2**(stages - 1), so G's basis and D's depthwise basis are
(H / 2**(stages-1)) x (W / 2**(stages-1)) at the image's aspect ratio (32x64 from 4 stages:
4x8) instead of 4x4, as the non-square StyleGAN2/3 forks make their constant
(layers.check_stages, layers.start_grid); every other layer is the square network's.

The reference runs some stages in bfloat16 on GPUs; these are float32 (config.train.dtype
is issue 22's). Resampling is written as two small matrix products per image (exact
upfirdn2d with zero padding), which XLA differentiates to any order (R1 / R2 need two).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxgan.base.schema import Field, Range
from jaxgan.base.errors import UserError
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.ops import convs
from jaxgan.core.models.fir import down_matrix, resample, up_matrix  # noqa: F401
from jaxgan.core.models import layers as L

SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0 / (1.0 + SLOPE ** 2))


def msr(key, shape, fan_in: int, gain: float):
  return jax.random.normal(key, shape, jnp.float32) * (gain / math.sqrt(fan_in))


class Conv1x1(nnx.Module):
  def __init__(self, a: int, b: int, gain: float, rngs: nnx.Rngs):
    self.kernel = nnx.Param(msr(rngs.params(), (a, b), a, gain))

  def __call__(self, x):
    return jnp.einsum("...c,cd->...d", x, self.kernel[...])


class GroupedConv(nnx.Module):
  """k x k convolution, `groups` groups, stride 1, "same" padding, no bias."""

  def __init__(self, channels: int, k: int, groups: int, gain: float, rngs: nnx.Rngs):
    self.groups, self.k = groups, k
    per = channels // groups
    self.kernel = nnx.Param(msr(rngs.params(), (k, k, per, channels), per * k * k, gain))

  def __call__(self, x):
    return grouped_conv(x, self.kernel[...], self.groups, self.k)


def grouped_conv(x, kernel, groups: int, k: int):
  """x (NHWC) convolved with the (k, k, C_in/groups, C_out) kernel in `groups` groups,
  stride 1, "same" padding."""
  p = (k - 1) // 2
  pad = ((p, p), (p, p))
  dense = lambda x, w: convs.conv(x, block_diagonal(w, groups).astype(x.dtype), (1, 1), pad)
  if groups == 1:
    return dense(x, kernel)
  grouped = lambda x, w: lax.conv_general_dilated(
      x, w.astype(x.dtype), (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=groups)
  # On CPU: one dense convolution (jaxgan/ops/convs.py, oneDNN, fast backward of any
  # order) with the block-diagonal kernel. XLA:CPU runs the backward passes of grouped
  # convolutions tens of times slower than dense ones (a 64-wide D's gradient: 50 s
  # against 6 s), and R1/R2 differentiate twice; the block-diagonal form costs
  # `groups` times the FLOPs instead. Chosen per platform when the step is lowered.
  return lax.platform_dependent(x, kernel, cpu=dense, default=grouped)


def block_diagonal(kernel, groups: int):
  """(k, k, C/g, C) grouped kernel -> the (k, k, C, C) dense kernel it equals."""
  if groups == 1:
    return kernel
  k, _, per, c = kernel.shape
  w = kernel.reshape(k, k, per, groups, c // groups)
  return jnp.einsum("abigo,hg->abhigo", w, jnp.eye(groups, dtype=kernel.dtype)).reshape(
      k, k, c, c)


class BiasedAct(nnx.Module):
  def __init__(self, channels: int):
    self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))

  def __call__(self, x):
    return jax.nn.leaky_relu(x + self.bias[...], SLOPE)


class Block(nnx.Module):
  def __init__(self, c: int, cardinality: int, expansion: int, num_blocks: int,
               rngs: nnx.Rngs):
    e = c * expansion
    gain = ACT_GAIN * num_blocks ** (-1.0 / 4.0)   # L^(-1/(2 * 3 layers - 2))
    self.w1 = Conv1x1(c, e, gain, rngs)
    self.act1 = BiasedAct(e)
    self.w2 = GroupedConv(e, 3, cardinality, gain, rngs)
    self.act2 = BiasedAct(e)
    self.w3 = Conv1x1(e, c, 0.0, rngs)             # zero: the block starts as identity

  def __call__(self, x):
    return x + self.w3(self.act2(self.w2(self.act1(self.w1(x)))))


def _stage_blocks(c, cardinality, expansion, n, total, rngs):
  return nnx.List([Block(c, cardinality, expansion, total, rngs) for _ in range(n)])


class R3GANGenerator(nnx.Module):
  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, widths, cardinality,
               blocks, expansion: int = 2, embed_dim: int = 64, conditioning: str = "none",
               num_classes: int = 0, rngs: nnx.Rngs):
    c_img, grid = image_shape[2], L.check_stages("r3gan", len(widths), 4, image_shape)
    self.conditioning, self.widths = conditioning, tuple(widths)
    total = sum(blocks)
    self.embed = (nnx.Param(msr(rngs.params(), (num_classes, embed_dim), num_classes, 1.0))
                  if conditioning != "none" else None)
    in_dim = latent_dim + (embed_dim if self.embed is not None else 0)
    self.basis = nnx.Param(jax.random.normal(rngs.params(), (*grid, widths[0]), jnp.float32))
    self.basis_linear = Conv1x1(in_dim, widths[0], 1.0, rngs)
    self.transitions = nnx.List([Conv1x1(a, b, 1.0, rngs) if a != b else None
                                 for a, b in zip(widths[:-1], widths[1:])])
    self.stages = nnx.List([_stage_blocks(w, g, expansion, n, total, rngs)
                            for w, g, n in zip(widths, cardinality, blocks)])
    self.out = Conv1x1(widths[-1], c_img, 1.0, rngs)

  def __call__(self, z, labels=None, *, train: bool):
    del train  # no normalisation, no dropout
    L.check_labels(labels, self.conditioning, "generator")
    x = z if self.embed is None else jnp.concatenate([z, self.embed[...][labels]], -1)
    h = self.basis[...][None] * self.basis_linear(x)[:, None, None, :]
    for i, stage in enumerate(self.stages):
      if i > 0:
        if self.transitions[i - 1] is not None:
          h = self.transitions[i - 1](h)
        h = resample(h, up_matrix)
      for block in stage:
        h = block(h)
    return self.out(h)


class R3GANDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], *, widths, cardinality, blocks,
               expansion: int = 2, embed_dim: int = 0, conditioning: str = "none",
               num_classes: int = 0, rngs: nnx.Rngs):
    grid = L.check_stages("r3gan", len(widths), 4, image_shape)
    widths, cardinality, blocks = (tuple(reversed(t)) for t in (widths, cardinality, blocks))
    self.conditioning = conditioning
    total = sum(blocks)
    self.extract = Conv1x1(image_shape[2], widths[0], 1.0, rngs)
    self.stages = nnx.List([_stage_blocks(w, g, expansion, n, total, rngs)
                            for w, g, n in zip(widths, cardinality, blocks)])
    self.transitions = nnx.List([Conv1x1(a, b, 1.0, rngs) if a != b else None
                                 for a, b in zip(widths[:-1], widths[1:])])
    c = widths[-1]
    area = grid[0] * grid[1]
    self.basis = nnx.Param(msr(rngs.params(), (*grid, c), area, 1.0))   # depthwise, start grid
    conditional = conditioning != "none"
    out = (embed_dim or c) if conditional else 1
    self.linear = Conv1x1(c, out, 1.0, rngs)
    self.embed = (nnx.Param(msr(rngs.params(), (num_classes, out), num_classes,
                                1.0 / math.sqrt(out))) if conditional else None)

  def freeze_units(self):
    """Freeze-D's units from the input: the stages, the first with the input conv, the
    others with the transition into them."""
    return [("extract", "stages/0")] + [(f"transitions/{i - 1}", f"stages/{i}")
                                        for i in range(1, len(self.stages))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], None)."""
    del train, rngs
    L.check_labels(labels, self.conditioning, "discriminator")
    h = self.extract(x)
    for i, stage in enumerate(self.stages):
      for block in stage:
        h = block(h)
      if i < len(self.transitions):
        h = resample(h, down_matrix)
        if self.transitions[i] is not None:
          h = self.transitions[i](h)
    h = self.linear(jnp.einsum("bhwc,hwc->bc", h, self.basis[...]))
    if self.embed is None:
      return h[:, 0], None
    return jnp.sum(h * self.embed[...][labels], axis=-1), None


def build(cfg, image_shape, num_classes, rngs):
  m = cfg.r3gan
  arch = dict(widths=tuple(m.widths), cardinality=tuple(m.cardinality),
              blocks=tuple(m.blocks), expansion=m.expansion,
              conditioning=cfg.conditioning, num_classes=num_classes)
  g = R3GANGenerator(cfg.latent_dim, image_shape, embed_dim=m.g_embed_dim, rngs=rngs, **arch)
  d = R3GANDiscriminator(image_shape, embed_dim=m.d_embed_dim, rngs=rngs, **arch)
  return g, d


def check(cfg, image_shape):
  m = cfg.r3gan
  n = len(m.widths)
  L.check_stages("r3gan", n, 4, image_shape)
  if len(m.cardinality) != n or len(m.blocks) != n:
    raise UserError(f"config.model.r3gan: widths, cardinality and blocks need one entry per "
                    f"stage; got {len(m.widths)}, {len(m.cardinality)}, {len(m.blocks)}.")
  for wd, g in zip(m.widths, m.cardinality):
    if g < 1 or (wd * m.expansion) % g:
      raise UserError(f"config.model.r3gan: width {wd} x expansion {m.expansion} is not "
                      f"divisible by cardinality {g}.")
  L.check_plain(cfg, "r3gan", "its initialisation keeps it stable",
                "G through z and D by projection")


ARCHITECTURES.register("r3gan", Architecture(build, check=check, fields={
    "widths": Field((768, 768, 768, 768), "channels per stage, from 4 px up (D: reversed)"),
    "cardinality": Field((96, 96, 96, 96), "groups of each stage's 3x3 convolutions"),
    "blocks": Field((2, 2, 2, 2), "residual blocks per stage"),
    "expansion": Field(2, "inverted bottleneck: channels inside a block = expansion x width",
                       rule=Range(1)),
    "g_embed_dim": Field(64, "class embedding appended to z (conditional G)", rule=Range(1)),
    "d_embed_dim": Field(0, "size of D's projection vector (0: D's last width)", rule=Range(0)),
}))
