"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN")
with StyleGAN2-ADA's conditioning (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"), as the authors' code builds it (NVlabs/stylegan2-ada-pytorch
d72cc7d, training/networks.py): `config.model.arch='stylegan2'`.

Generator: a mapping network (z and a label embedding, each normalised, through
`mapping_layers` FC layers at learning-rate multiplier 0.01) gives w, broadcast to one w
per layer (num_ws); the synthesis network starts from a learned constant 4x4 input, and
each block doubles the resolution with a modulated 3x3 convolution (upsampling: a strided
transposed convolution and the [1, 3, 3, 1] filter), adds per-pixel noise (a learned
strength per layer), then a second modulated convolution; the "skip" output sums each
block's to-RGB (modulated 1x1, no demodulation) into the upsampled image of the block
before. Channels at resolution r: min(channel_base / r, channel_max).
In training, style mixing (probability `mixing_prob`): a second z's w replaces the ws from
a random cut-off on; w_avg, the running mean of w (decay 0.995), is G's statistic (kept in
the state, used by the truncation trick w_avg + psi (w - w_avg)).

Discriminator: from-RGB (1x1), then per resolution two 3x3 convolutions, the second with /2
downsampling, and for the "resnet" architecture a 1x1 /2 skip, summed with gain sqrt(1/2)
("orig": no skip, as the authors' cifar setting); at 4x4, minibatch standard deviation,
a 3x3 convolution, FC, FC to one logit, or for a conditional D to a vector whose product
with an embedding of the label (an 8-layer mapping network) over sqrt(dim) is the logit.

Non-square images (config.data.image_size=H,W), as the non-square StyleGAN2/3 forks: the
short side is a power of two from 16 up and both sides are divisible by 2**n, n the number
of x2 blocks, so G's constant and D's epilogue (its last 3x3 conv and the FC over c x h x w)
have the image's aspect ratio, (H / 2**n) x (W / 2**n): a 256x512 network starts from a 4x8
constant (layers.start_grid). Blocks keep the names, channels and ws of their short-side
resolution r (4, 8, ... px); only their maps (and noise images) are r x (r W / H).

Differences on purpose: float32 throughout (the reference runs the top four resolutions
in float16 on GPUs; config.train.dtype is issue 22's). Randomness (noise inputs, style
mixing) comes from the key G is called with; without one (sampling, evaluation) the noise
is each layer's fixed noise_const (the reference's noise_mode='const') so samples are a
pure function of z.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.base.schema import Field, OneOf, Range
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import fir
from jaxgan.core.models import layers as L
from jaxgan.core.models import stylegan2_layers as S


class NoiseConst(nnx.BatchStat):
  """A layer's fixed noise image (the reference's noise_const buffer)."""


def channels(res: int, base: int, cap: int) -> int:
  return min(base // res, cap)


def grid(image_shape) -> tuple:
  """(n, (sh, sw)): x2 blocks and the start grid (4 on the short side); a one-line
  UserError naming config.data.image_size for a size StyleGAN2 cannot build."""
  short = min(image_shape[0], image_shape[1])
  ok = short >= 16 and not short & (short - 1)
  n = int(math.log2(short)) - 2 if ok else None
  return n, L.start_grid("stylegan2", image_shape, n, "builds images whose short side has "
                         "a power-of-two size from 16 up", "32 (for 28x28 data) or 32,64")


class SynthesisLayer(nnx.Module):
  def __init__(self, din: int, dout: int, w_dim: int, res: tuple, up: bool, rngs: nnx.Rngs):
    """res: the (h, w) of the layer's output (its noise image)."""
    self.affine = S.FullyConnected(w_dim, din, bias_init=1.0, rngs=rngs)
    self.weight = nnx.Param(jax.random.normal(rngs.params(), (3, 3, din, dout)))
    self.bias = nnx.Param(jnp.zeros((dout,), jnp.float32))
    self.noise_strength = nnx.Param(jnp.zeros((), jnp.float32))
    self.noise_const = NoiseConst(jax.random.normal(rngs.params(), res))
    self.up = up

  def __call__(self, x, w, key=None):
    x = S.modulated_conv(x, self.weight[...], self.affine(w), up=self.up)
    noise = (self.noise_const[...][None, :, :, None] if key is None else
             jax.random.normal(key, (*x.shape[:3], 1), x.dtype))
    return S.lrelu(x + noise * self.noise_strength[...] + self.bias[...])


class ToRGB(nnx.Module):
  def __init__(self, din: int, img_channels: int, w_dim: int, rngs: nnx.Rngs):
    self.affine = S.FullyConnected(w_dim, din, bias_init=1.0, rngs=rngs)
    self.weight = nnx.Param(jax.random.normal(rngs.params(), (1, 1, din, img_channels)))
    self.bias = nnx.Param(jnp.zeros((img_channels,), jnp.float32))
    self.gain = 1.0 / math.sqrt(din)

  def __call__(self, x, w):
    y = S.modulated_conv(x, self.weight[...], self.affine(w) * self.gain, demodulate=False)
    return jnp.clip(y + self.bias[...], -S.CLAMP, S.CLAMP)


class SynthesisBlock(nnx.Module):
  """One resolution of the skip generator; uses num_conv + 1 consecutive ws. `res`: the
  (h, w) of its maps (the constant's, for the first block)."""

  def __init__(self, din: int, dout: int, res: tuple, img_channels: int, w_dim: int,
               rngs: nnx.Rngs):
    self.first = din == 0
    if self.first:
      self.const = nnx.Param(jax.random.normal(rngs.params(), (*res, dout)))
      self.conv0 = None
    else:
      self.conv0 = SynthesisLayer(din, dout, w_dim, res, True, rngs)
    self.conv1 = SynthesisLayer(dout, dout, w_dim, res, False, rngs)
    self.torgb = ToRGB(dout, img_channels, w_dim, rngs)
    self.num_conv = 1 if self.first else 2

  def __call__(self, x, img, ws, key=None):
    keys = [None, None] if key is None else list(jax.random.split(key))
    if self.first:
      x = jnp.broadcast_to(self.const[...][None], (ws.shape[0], *self.const.shape))
      x = self.conv1(x, ws[:, 0], keys[1])
    else:
      x = self.conv0(x, ws[:, 0], keys[0])
      x = self.conv1(x, ws[:, 1], keys[1])
    y = self.torgb(x, ws[:, self.num_conv])
    return x, y if img is None else fir.up2(img) + y


class StyleGAN2Generator(nnx.Module):
  uses_key = True         # G(z, labels, train=..., rngs=key): noise inputs, style mixing
  style_based = True      # and truncation in W, W-space tools (jaxgan/eval/latent.py)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, w_dim: int,
               mapping_layers: int, channel_base: int, channel_max: int,
               mixing_prob: float, w_avg_beta: float, conditioning: str = "none",
               num_classes: int = 0, rngs: nnx.Rngs):
    (n, (sh, sw)), img_c = grid(image_shape), image_shape[2]
    self.conditioning, self.num_classes, self.mixing_prob = conditioning, num_classes, mixing_prob
    blocks, din = [], 0
    for i in range(n + 1):   # short side 4 * 2**i
      dout = channels(4 * 2 ** i, channel_base, channel_max)
      res = (sh * 2 ** i, sw * 2 ** i)
      blocks.append(SynthesisBlock(din, dout, res, img_c, w_dim, rngs))
      din = dout
    self.blocks = nnx.List(blocks)
    self.num_ws = sum(b.num_conv for b in blocks) + 1
    c_dim = num_classes if conditioning != "none" else 0
    self.mapping = S.Mapping(latent_dim, c_dim, w_dim, mapping_layers, beta=w_avg_beta,
                             rngs=rngs)

  def map(self, z, labels=None, *, train: bool = False, key=None, truncation: float = 1.0):
    """z -> ws [B, num_ws, w_dim]: with style mixing when training with a key, truncated
    towards w_avg when `truncation` < 1."""
    L.check_labels(labels, self.conditioning, "generator")
    c = L.one_hot(labels, self.num_classes) if labels is not None else None
    w = self.mapping(z, c, update_avg=train)
    ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[-1]))
    if train and key is not None and self.mixing_prob > 0:
      k_z, k_cut, k_p = jax.random.split(key, 3)
      w2 = self.mapping(jax.random.normal(k_z, z.shape, z.dtype), c)   # no w_avg update
      cutoff = jax.random.randint(k_cut, (), 1, self.num_ws)
      cutoff = jnp.where(jax.random.uniform(k_p) < self.mixing_prob, cutoff, self.num_ws)
      ws = jnp.where((jnp.arange(self.num_ws) < cutoff)[None, :, None], ws, w2[:, None])
    if truncation != 1.0:
      avg = self.mapping.w_avg[...]
      ws = avg + truncation * (ws - avg)
    return ws

  def synthesize(self, ws, key=None):
    """ws [B, num_ws, w_dim] -> images [B, H, W, C] (no tanh, as the reference)."""
    x = img = None
    i = 0
    for b, block in enumerate(self.blocks):
      k = None if key is None else jax.random.fold_in(key, b)
      x, img = block(x, img, ws[:, i:i + block.num_conv + 1], k)
      i += block.num_conv
    return img

  def __call__(self, z, labels=None, *, train: bool, rngs=None, truncation: float = 1.0):
    k_map, k_noise = (None, None) if rngs is None else jax.random.split(rngs)
    return self.synthesize(self.map(z, labels, train=train, key=k_map, truncation=truncation),
                           k_noise if train else None)


class DiscriminatorBlock(nnx.Module):
  def __init__(self, din: int, tmp: int, dout: int, img_channels: int, resnet: bool,
               rngs: nnx.Rngs):
    self.fromrgb = S.Conv(img_channels, tmp, 1, rngs=rngs) if din == 0 else None
    self.conv0 = S.Conv(tmp, tmp, 3, rngs=rngs)
    self.conv1 = S.Conv(tmp, dout, 3, down=True, rngs=rngs)
    self.skip = (S.Conv(tmp, dout, 1, act=False, bias=False, down=True, clamp=None, rngs=rngs)
                 if resnet else None)

  def __call__(self, x):
    if self.fromrgb is not None:
      x = self.fromrgb(x)
    if self.skip is None:
      return self.conv1(self.conv0(x))
    g = math.sqrt(0.5)
    return self.skip(x, gain=g) + self.conv1(self.conv0(x), gain=g)


class StyleGAN2Discriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], *, channel_base: int, channel_max: int,
               architecture: str, mbstd_group: int, conditioning: str = "none",
               num_classes: int = 0, rngs: nnx.Rngs):
    (n, (sh, sw)), img_c = grid(image_shape), image_shape[2]
    ch = lambda r: channels(r, channel_base, channel_max)
    self.conditioning, self.num_classes, self.mbstd_group = conditioning, num_classes, mbstd_group
    res = 4 * 2 ** n                                           # the short side
    resolutions = [res // 2 ** i for i in range(n)]            # res .. 8
    self.blocks = nnx.List([
        DiscriminatorBlock(ch(r) if r < res else 0, ch(r), ch(r // 2), img_c,
                           architecture == "resnet", rngs) for r in resolutions])
    c4 = ch(4)
    cmap = c4 if conditioning != "none" else 0
    self.mapping = (S.Mapping(0, num_classes, cmap, 8, track_avg=False, rngs=rngs)
                    if cmap else None)
    self.conv = S.Conv(c4 + 1, c4, 3, rngs=rngs)
    self.fc = S.FullyConnected(c4 * sh * sw, c4, act=True, rngs=rngs)   # the epilogue grid
    self.out = S.FullyConnected(c4, cmap or 1, rngs=rngs)

  def freeze_units(self):
    """Freeze-D's units from the input: the blocks, from the highest resolution (the
    first with its fromrgb), as Mo et al. 2020 freeze StyleGAN's."""
    return [(f"blocks/{i}",) for i in range(len(self.blocks))]

  def __call__(self, x, labels=None, *, train: bool, rngs=None):
    """Returns (logits [B], None)."""
    del train, rngs
    L.check_labels(labels, self.conditioning, "discriminator")
    for block in self.blocks:
      x = block(x)
    x = self.conv(S.minibatch_stddev(x, self.mbstd_group))
    x = self.out(self.fc(x.reshape(x.shape[0], -1)))
    if self.mapping is None:
      return x[:, 0], None
    cmap = self.mapping(None, L.one_hot(labels, self.num_classes))
    return jnp.sum(x * cmap, axis=-1) / math.sqrt(cmap.shape[-1]), None


def build(cfg, image_shape, num_classes, rngs):
  m = cfg.stylegan2
  widths = dict(channel_base=m.channel_base, channel_max=m.channel_max,
                conditioning=cfg.conditioning, num_classes=num_classes)
  g = StyleGAN2Generator(cfg.latent_dim, image_shape, w_dim=m.w_dim,
                         mapping_layers=m.mapping_layers, mixing_prob=m.mixing_prob,
                         w_avg_beta=m.w_avg_beta, rngs=rngs, **widths)
  d = StyleGAN2Discriminator(image_shape, architecture=m.d_architecture,
                             mbstd_group=m.mbstd_group, rngs=rngs, **widths)
  return g, d


def check(cfg, image_shape):
  grid(image_shape)
  L.check_plain(cfg, "stylegan2", "demodulation replaces them",
                "G through its mapping network and D by projection (StyleGAN2-ADA)")


ARCHITECTURES.register("stylegan2", Architecture(build, check=check, fields={
    "w_dim": Field(512, "width of w (and of the mapping network)", rule=Range(1)),
    "mapping_layers": Field(8, "FC layers of G's mapping network", rule=Range(1)),
    "channel_base": Field(32768, "channels at resolution r: min(channel_base / r, "
                          "channel_max)", rule=Range(1)),
    "channel_max": Field(512, "the most channels of any resolution", rule=Range(1)),
    "mixing_prob": Field(0.9, "style-mixing probability in training", rule=Range(0, 1)),
    "w_avg_beta": Field(0.995, "decay of the running mean of w (truncation's centre)",
                        rule=Range(0, 1)),
    "d_architecture": Field("resnet", "D's blocks: 'resnet' (skips) or 'orig' (none)",
                            rule=OneOf(("resnet", "orig"))),
    "mbstd_group": Field(4, "minibatch standard deviation group size", rule=Range(1)),
}))
