"""The KL autoencoder of latent diffusion (Rombach et al., CVPR 2022), as diffusers'
`AutoencoderKL` builds it, in Flax NNX: the frozen image codec a latent GAN trains behind.

The facts (shapes, constants, order of operations) are read from diffusers 0.42.1
(src/diffusers/models/autoencoders/autoencoder_kl.py, vae.py, resnet.py, unet_2d_blocks.py,
attention_processor.py; and autoencoder_kl_flux2.py for FLUX.2's layout); the code is ours.
One network covers the layouts people download:

  SD-VAE (sd-vae-ft-mse)  4 latent channels, quant convs, 8x down, scaling 0.18215
  FLUX.1                  16 channels, no quant convs, scaling 0.3611, shift 0.1159
  FLUX.2                  32 channels, quant convs, and a non-affine BatchNorm's running
                          statistics over 2x2-patchified latents (128 channels) that its
                          pipeline normalises with (kept here as `bn`, unused by
                          encode/decode, exactly as in diffusers' model)

Encoder: conv_in 3x3; per level `layers_per_block` ResNet blocks (GroupNorm eps 1e-6,
SiLU, 3x3 convs, a 1x1 shortcut when the width changes) and, except at the last level, a
stride-2 3x3 conv after padding one row and column at the bottom/right; a middle block
(ResNet, one-head self-attention over all positions with a GroupNorm and a residual,
ResNet); GroupNorm, SiLU, conv_out 3x3 to 2 x latent channels (mean and log-variance),
then the 1x1 `quant_conv`. The log-variance is clamped to [-30, 20] and std = exp(lv / 2).
Decoder: `post_quant_conv` 1x1, conv_in 3x3, the middle block, per level (widest first)
`layers_per_block + 1` ResNet blocks and, except at the last, nearest 2x upsampling and a
3x3 conv; GroupNorm, SiLU, conv_out 3x3.

Images are NHWC in [-1, 1] (diffusers' convention, channels last as everywhere in
jaxgan). The module tree mirrors diffusers' attribute names, so its state-dict keys map
one to one onto our parameters (autoencoder_files.py). A fresh network is initialised as
PyTorch's layers are (uniform +-1/sqrt(fan_in) for weights and biases; GroupNorm 1 and 0),
so one trained here starts where diffusers' would.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.ops import convs

EPS = 1e-6            # every GroupNorm of the encoder and decoder
LOGVAR_RANGE = (-30.0, 20.0)


@dataclasses.dataclass(frozen=True)
class AEConfig:
  """The fields of a diffusers config.json that shape the network (autoencoder_files.py
  reads and writes them)."""
  in_channels: int = 3
  out_channels: int = 3
  block_out_channels: Tuple[int, ...] = (128, 256, 512, 512)
  decoder_block_out_channels: Optional[Tuple[int, ...]] = None
  layers_per_block: int = 2
  latent_channels: int = 4
  norm_num_groups: int = 32
  use_quant_conv: bool = True
  use_post_quant_conv: bool = True
  mid_block_add_attention: bool = True
  scaling_factor: Optional[float] = 0.18215   # None: FLUX.2 (its pipeline uses `bn`)
  shift_factor: Optional[float] = None
  class_name: str = "AutoencoderKL"     # or "AutoencoderKLFlux2"
  patch_size: Tuple[int, int] = (2, 2)  # FLUX.2's latent BatchNorm
  batch_norm_eps: float = 1e-4

  @property
  def downsampling(self) -> int:
    """Image pixels per latent pixel along each side (8 for every published layout)."""
    return 2 ** (len(self.block_out_channels) - 1)

  @property
  def decoder_channels(self) -> Tuple[int, ...]:
    return tuple(self.decoder_block_out_channels or self.block_out_channels)


def _torch_uniform(fan_in: int):
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Conv(nnx.Module):
  """A k x k convolution with bias (kernel HWIO) on jaxgan's convolution primitive."""

  def __init__(self, cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1,
               padding: Tuple[Tuple[int, int], Tuple[int, int]] = None):
    init = _torch_uniform(cin * k * k)
    self.kernel = nnx.Param(init(rngs.params(), (k, k, cin, cout)))
    self.bias = nnx.Param(init(rngs.params(), (cout,)))
    self.stride = stride
    self.padding = padding if padding is not None else ((k // 2, k // 2),) * 2

  def __call__(self, x):
    y = convs.conv(x, self.kernel[...].astype(x.dtype), (self.stride,) * 2, self.padding)
    return y + self.bias[...].astype(x.dtype)


class Linear(nnx.Module):
  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
    init = _torch_uniform(cin)
    self.kernel = nnx.Param(init(rngs.params(), (cin, cout)))
    self.bias = nnx.Param(init(rngs.params(), (cout,)))

  def __call__(self, x):
    return x @ self.kernel[...].astype(x.dtype) + self.bias[...].astype(x.dtype)


class GroupNorm(nnx.Module):
  """PyTorch's GroupNorm: per sample and group, mean and biased variance over the group's
  channels and all positions; then a per-channel affine map. Statistics in float32."""

  def __init__(self, groups: int, channels: int, *, rngs: nnx.Rngs):
    del rngs
    if channels % groups:
      raise ValueError(f"GroupNorm: {channels} channels do not split into {groups} groups.")
    self.groups = groups
    self.scale = nnx.Param(jnp.ones((channels,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))

  def __call__(self, x):
    b, h, w, c = x.shape
    g = x.astype(jnp.float32).reshape(b, h, w, self.groups, c // self.groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = jnp.square(g - mean).mean(axis=(1, 2, 4), keepdims=True)
    y = ((g - mean) * jax.lax.rsqrt(var + EPS)).reshape(b, h, w, c)
    return (y * self.scale[...] + self.bias[...]).astype(x.dtype)


class ResnetBlock(nnx.Module):
  """diffusers' ResnetBlock2D without a time embedding (dropout 0, output scale 1)."""

  def __init__(self, cin: int, cout: int, groups: int, *, rngs: nnx.Rngs):
    self.norm1 = GroupNorm(groups, cin, rngs=rngs)
    self.conv1 = Conv(cin, cout, 3, rngs=rngs)
    self.norm2 = GroupNorm(groups, cout, rngs=rngs)
    self.conv2 = Conv(cout, cout, 3, rngs=rngs)
    self.conv_shortcut = Conv(cin, cout, 1, rngs=rngs) if cin != cout else None

  def __call__(self, x):
    h = self.conv1(jax.nn.silu(self.norm1(x)))
    h = self.conv2(jax.nn.silu(self.norm2(h)))
    return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Attention(nnx.Module):
  """The middle block's self-attention: one head as wide as the block, over all H*W
  positions, on GroupNorm'd input, added back to the input."""

  def __init__(self, channels: int, groups: int, *, rngs: nnx.Rngs):
    self.group_norm = GroupNorm(groups, channels, rngs=rngs)
    self.to_q = Linear(channels, channels, rngs=rngs)
    self.to_k = Linear(channels, channels, rngs=rngs)
    self.to_v = Linear(channels, channels, rngs=rngs)
    self.to_out = nnx.List([Linear(channels, channels, rngs=rngs)])

  def __call__(self, x):
    b, h, w, c = x.shape
    t = self.group_norm(x).reshape(b, h * w, 1, c)          # (batch, tokens, heads, dim)
    q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
    # diffusers computes this softmax in float32 (upcast_softmax); so do we
    a = jax.nn.dot_product_attention(q.astype(jnp.float32), k.astype(jnp.float32),
                                     v.astype(jnp.float32)).astype(x.dtype)
    return x + self.to_out[0](a).reshape(b, h, w, c)


class MidBlock(nnx.Module):
  def __init__(self, channels: int, groups: int, attention: bool, *, rngs: nnx.Rngs):
    self.resnets = nnx.List([ResnetBlock(channels, channels, groups, rngs=rngs)
                             for _ in range(2)])
    self.attentions = nnx.List([Attention(channels, groups, rngs=rngs)] if attention else [])

  def __call__(self, x):
    x = self.resnets[0](x)
    if len(self.attentions):
      x = self.attentions[0](x)
    return self.resnets[1](x)


class Resample(nnx.Module):
  """`down`: pad one row/column at the bottom/right, 3x3 conv of stride 2 (diffusers'
  Downsample2D with padding 0); `up`: nearest 2x, then a 3x3 conv (Upsample2D)."""

  def __init__(self, channels: int, down: bool, *, rngs: nnx.Rngs):
    self.down = down
    pad = ((0, 1), (0, 1)) if down else ((1, 1), (1, 1))
    self.conv = Conv(channels, channels, 3, stride=2 if down else 1, padding=pad, rngs=rngs)

  def __call__(self, x):
    if not self.down:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return self.conv(x)


class Level(nnx.Module):
  """DownEncoderBlock2D / UpDecoderBlock2D: ResNet blocks, then an optional resampler."""

  def __init__(self, cin: int, cout: int, layers: int, groups: int, resample: Optional[str],
               *, rngs: nnx.Rngs):
    self.resnets = nnx.List([ResnetBlock(cin if i == 0 else cout, cout, groups, rngs=rngs)
                             for i in range(layers)])
    block = [Resample(cout, resample == "down", rngs=rngs)] if resample else []
    if resample == "down":
      self.downsamplers = nnx.List(block)
    elif resample == "up":
      self.upsamplers = nnx.List(block)

  def __call__(self, x):
    for r in self.resnets:
      x = r(x)
    for s in getattr(self, "downsamplers", ()) or getattr(self, "upsamplers", ()):
      x = s(x)
    return x


class Encoder(nnx.Module):
  def __init__(self, cfg: AEConfig, *, rngs: nnx.Rngs):
    ch, g = cfg.block_out_channels, cfg.norm_num_groups
    self.conv_in = Conv(cfg.in_channels, ch[0], 3, rngs=rngs)
    self.down_blocks = nnx.List([
        Level(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block, g,
              "down" if i < len(ch) - 1 else None, rngs=rngs) for i in range(len(ch))])
    self.mid_block = MidBlock(ch[-1], g, cfg.mid_block_add_attention, rngs=rngs)
    self.conv_norm_out = GroupNorm(g, ch[-1], rngs=rngs)
    self.conv_out = Conv(ch[-1], 2 * cfg.latent_channels, 3, rngs=rngs)

  def __call__(self, x):
    x = self.conv_in(x)
    for level in self.down_blocks:
      x = level(x)
    x = self.mid_block(x)
    return self.conv_out(jax.nn.silu(self.conv_norm_out(x)))


class Decoder(nnx.Module):
  def __init__(self, cfg: AEConfig, *, rngs: nnx.Rngs):
    ch, g = tuple(reversed(cfg.decoder_channels)), cfg.norm_num_groups
    self.conv_in = Conv(cfg.latent_channels, ch[0], 3, rngs=rngs)
    self.mid_block = MidBlock(ch[0], g, cfg.mid_block_add_attention, rngs=rngs)
    self.up_blocks = nnx.List([
        Level(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block + 1, g,
              "up" if i < len(ch) - 1 else None, rngs=rngs) for i in range(len(ch))])
    self.conv_norm_out = GroupNorm(g, ch[-1], rngs=rngs)
    self.conv_out = Conv(ch[-1], cfg.out_channels, 3, rngs=rngs)

  def __call__(self, z):
    x = self.mid_block(self.conv_in(z))
    for level in self.up_blocks:
      x = level(x)
    return self.conv_out(jax.nn.silu(self.conv_norm_out(x)))


class LatentStat(nnx.Variable):
  """A statistic stored with the weights (FLUX.2's latent BatchNorm), not a parameter."""


class AutoencoderKL(nnx.Module):
  """encode(x) -> (mean, std) of q(z|x); decode(z) -> x; scale/unscale apply the config's
  scaling_factor and shift_factor ((z - shift) * scaling, as diffusers' pipelines do)."""

  def __init__(self, cfg: AEConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    lat = cfg.latent_channels
    self.encoder = Encoder(cfg, rngs=rngs)
    self.decoder = Decoder(cfg, rngs=rngs)
    self.quant_conv = Conv(2 * lat, 2 * lat, 1, rngs=rngs) if cfg.use_quant_conv else None
    self.post_quant_conv = Conv(lat, lat, 1, rngs=rngs) if cfg.use_post_quant_conv else None
    if cfg.class_name == "AutoencoderKLFlux2":
      n = math.prod(cfg.patch_size) * lat
      self.bn = nnx.Dict(running_mean=LatentStat(jnp.zeros((n,), jnp.float32)),
                         running_var=LatentStat(jnp.ones((n,), jnp.float32)))

  def moments(self, x):
    """The encoder's output: mean and log-variance of q(z|x), clamped as diffusers."""
    h = self.encoder(x)
    if self.quant_conv is not None:
      h = self.quant_conv(h)
    mean, logvar = jnp.split(h, 2, axis=-1)
    return mean, jnp.clip(logvar, *LOGVAR_RANGE)

  def encode(self, x):
    mean, logvar = self.moments(x)
    return mean, jnp.exp(0.5 * logvar)

  def decode(self, z):
    if self.post_quant_conv is not None:
      z = self.post_quant_conv(z)
    return self.decoder(z)

  def scale(self, z):
    return (z - (self.cfg.shift_factor or 0.0)) * self._scaling()

  def unscale(self, z):
    return z / self._scaling() + (self.cfg.shift_factor or 0.0)

  def _scaling(self) -> float:
    if self.cfg.scaling_factor is None:
      raise ValueError(f"{self.cfg.class_name} has no scaling_factor: its latents are "
                       "normalised with the statistics of its BatchNorm (`bn`).")
    return self.cfg.scaling_factor


def create(cfg: AEConfig, seed: int = 0) -> AutoencoderKL:
  return AutoencoderKL(cfg, rngs=nnx.Rngs(seed))


def abstract(cfg: AEConfig) -> AutoencoderKL:
  """The network's structure with shapes only (jax.eval_shape: nothing allocated)."""
  return nnx.eval_shape(lambda: create(cfg))


def num_parameters(model: AutoencoderKL) -> int:
  """Trainable parameters, as diffusers' `num_parameters()` counts them (not FLUX.2's
  latent BatchNorm statistics, which are buffers there)."""
  return sum(int(math.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
