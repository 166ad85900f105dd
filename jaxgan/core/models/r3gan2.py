"""R3GAN2: R3GAN rebuilt from EDM2's magnitude-preserving layers (`config.model.arch=r3gan2`).

Reference: the R3GAN authors' successor code, github.com/IFeelBloated/R3GAN2 at commit
3b04752d8dd613bba7d53bce661fec473f1f3254 (R3GAN/Networks.py, MagnitudePreservingLayers.py,
Resamplers.py); the layers are jaxgan/core/models/mp_layers.py (Karras et al., CVPR 2024).
Parameter counts equal the reference's for its five presets (tests/test_r3gan2.py).

Residual stream. Each stage is a group of blocks x <- x + FFN(x), FFN = a biased 1x1
(W -> 2W; in G with a noise column) whose inputs are scaled by rsqrt(V), MP-LReLU, a grouped
3x3 (32 channels per group), MP-LReLU, a 1x1 back to W whose outputs are scaled per channel
by alpha = tanh(v) (v = 0 at the start: every block starts switched off). The stream is
never rescaled inside a stage; V = 1 + sum alpha^2 tracks its variance, and whatever reads
the stream next (the transition, G's output layer, D's head) scales it by rsqrt(V).

Generator: [z, class embedding (64, conditional)] with a ones column -> Linear to 2 W0 ->
MP-LReLU -> a learned grouped 4x4 basis -> MP-LReLU -> 1x1 to W0 -> x2 up to 8 px; stages
of blocks at 8, 16, ... px with x2 upsampling between them; a 1x1 to the image channels with
input gain Gain (a learned scalar, 1 at the start) x rsqrt(V); no output activation.
Discriminator: 1x1 from the image; stages of blocks (the widths reversed) with /2
downsampling between; /2 to 4 px; a biased 1x1 (W -> 2W, input gain rsqrt(V)) -> MP-LReLU
-> a grouped "valid" 4x4 basis -> MP-LReLU -> Linear to 1 logit, or (conditional) to W0
values whose inner product with D's class embedding / sqrt(W0) is the logit.

Resampling: between equal widths, [1, 3, 3, 1] FIR up/down (jaxgan/core/models/fir.py, as
R3GAN); where the width changes (FFHQ-256's 512 -> 256 -> 128), the reference's in-place
resamplers: channels repeated and pixel-shuffled (up) or pixel-unshuffled and averaged
(down), with a [1, 2, 1] x [1, 2, 1] / 16 blur.

Square images only: the reference builds them, and a non-square config.data.image_size is
refused in one line (layers.check_square); R3GAN takes height,width.

Differences from the reference, on purpose: float32 throughout unless config.train.dtype
says otherwise (the reference runs G after its head and D before its head in bfloat16); its
unused modulation and attention paths (no preset builds them) are not built.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.base.errors import UserError
from jaxgan.base.schema import Field, Range
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L
from jaxgan.core.models import mp_layers as mp
from jaxgan.core.models.fir import down_matrix, resample, up_matrix

GROUP = 32   # channels per group of the 3x3 convolutions and of the 4x4 bases


def _blur(x):
  """Depthwise [1, 2, 1] x [1, 2, 1] / 16, zero padding 1 (NHWC)."""
  k = jnp.asarray([1.0, 2.0, 1.0], x.dtype) / 4.0
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  h, w = x.shape[1], x.shape[2]
  rows = sum(k[i] * xp[:, i:i + h, :, :] for i in range(3))
  return sum(k[j] * rows[:, :, j:j + w, :] for j in range(3))


def upsample(x, cout: int):
  """x2 up to `cout` channels: the [1, 3, 3, 1] FIR when the width stays, else each channel
  repeated 4 cout / cin times, pixel-shuffled (channel c*4 + 2i + j -> pixel (i, j)) and
  blurred, as the reference's InplaceUpsampler."""
  n, h, w, c = x.shape
  if c == cout:
    return resample(x, up_matrix)
  x = jnp.repeat(x, 4 * cout // c, axis=-1)
  x = x.reshape(n, h, w, cout, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * h, 2 * w, cout)
  return _blur(x)


def downsample(x, cout: int):
  """/2 to `cout` channels: the FIR when the width stays, else blurred, pixel-unshuffled
  (pixel (i, j) of channel c -> c*4 + 2i + j) and averaged over groups of 4 cin / cout."""
  n, h, w, c = x.shape
  if c == cout:
    return resample(x, down_matrix)
  x = _blur(x)
  x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
  return x.reshape(n, h // 2, w // 2, cout, 4 * c // cout).mean(axis=-1)


class FFN(nnx.Module):
  def __init__(self, width: int, ratio: float, noise: bool, rngs: nnx.Rngs):
    hidden = round(width * ratio)
    self.l1 = mp.BiasedPointwise(width, hidden, noise=noise, rngs=rngs)
    self.l2 = mp.Conv(hidden, hidden, 3, groups=hidden // GROUP, rngs=rngs)
    self.l3 = mp.Conv(hidden, width, 1, rngs=rngs)
    self.alpha = nnx.Param(jnp.zeros((width,), jnp.float32))   # tanh(v): the branch's gain

  def __call__(self, x, in_gain, noise):
    alpha = jnp.tanh(self.alpha[...])
    y = mp.lrelu(self.l1(x, in_gain, noise))
    y = mp.lrelu(self.l2(y))
    return x + self.l3(y, out_gain=alpha), alpha


class Stage(nnx.Module):
  """A residual group: returns (x, V), V the per-channel variance of the stream."""

  def __init__(self, width: int, blocks: int, ratio: float, noise: bool, rngs: nnx.Rngs):
    self.noise = noise
    self.blocks = nnx.List([FFN(width, ratio, noise, rngs) for _ in range(blocks)])

  def __call__(self, x, keys=None):
    """keys: one key per sample (G: its noise maps, a fresh one per block)."""
    var = jnp.ones((), jnp.float32)
    for i, block in enumerate(self.blocks):
      noise = None
      if self.noise:
        noise = jax.vmap(lambda k, i=i: jax.random.normal(
            jax.random.fold_in(k, i), (*x.shape[1:3], 1), jnp.float32))(keys)
      x, alpha = block(x, jax.lax.rsqrt(var), noise)
      var = var + alpha * alpha
    return x, var


class ClassEmbedder(nnx.Module):
  """One embedding row per class, each normalised to RMS 1 (centered); every class starts
  from the same random row, as the reference."""

  def __init__(self, num_classes: int, dim: int, rngs: nnx.Rngs):
    row = jax.random.normal(rngs.params(), (dim, 1))
    self.weight = mp.MPWeight(jnp.tile(row, (1, num_classes)), centered=True)   # (dim, K)

  def __call__(self, labels):
    return mp.normalize(self.weight[...], True).T[labels]


class R3GAN2Generator(nnx.Module):
  uses_key = True   # noise maps, drawn from the key G is given

  def weight_projection(self):
    """Forced weight normalisation after every optimizer step (mp_layers)."""
    return mp.forced_weight_norm(self)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, widths, blocks,
               ratio: float = 2.0, embed_dim: int = 64, conditioning: str = "none",
               num_classes: int = 0, rngs: nnx.Rngs):
    self.conditioning, self.widths = conditioning, tuple(widths)
    conditional = conditioning != "none"
    self.embed = ClassEmbedder(num_classes, embed_dim, rngs) if conditional else None
    w0 = widths[0]
    self.head1 = mp.Linear(latent_dim + (embed_dim if conditional else 0) + 1, 2 * w0,
                           rngs=rngs)
    self.basis = mp.MPWeight(jax.random.normal(rngs.params(), (4, 4, GROUP, 2 * w0)),
                             centered=True)
    self.head3 = mp.Conv(2 * w0, w0, 1, rngs=rngs)
    self.stages = nnx.List([Stage(w, n, ratio, True, rngs) for w, n in zip(widths, blocks)])
    self.out = mp.Conv(widths[-1], image_shape[2], 1, centered=False, rngs=rngs)
    self.gain = nnx.Param(jnp.ones((), jnp.float32))

  def _basis(self, x):
    """The grouped 4x4 basis: x [B, C] -> [B, 4, 4, C] (groups of 32 inputs)."""
    c = x.shape[-1]
    w = mp.normalize(self.basis[...], True) / math.sqrt(GROUP)    # the reference's scale
    w = w.reshape(4, 4, GROUP, c // GROUP, GROUP).astype(x.dtype)
    return jnp.einsum("bgc,hwcgo->bhwgo", x.reshape(x.shape[0], c // GROUP, GROUP),
                      w).reshape(x.shape[0], 4, 4, c)

  def __call__(self, z, labels=None, *, train: bool, rngs: jax.Array | None = None,
               truncation: float = 1.0):
    """rngs: the key of the noise maps (training); without one (sampling), each sample's
    maps are drawn from a key made of its z, so an image is a function of (z, label)
    whatever the batch around it."""
    del train, truncation
    L.check_labels(labels, self.conditioning, "generator")
    if rngs is None:
      bits = jax.lax.bitcast_convert_type(z[:, :2].astype(jnp.float32), jnp.uint32)
      base = jax.random.PRNGKey(0)
      keys = jax.vmap(lambda b: jax.random.fold_in(jax.random.fold_in(base, b[0]), b[1]))(bits)
    else:
      keys = jax.random.split(rngs, z.shape[0])
    x = z if self.embed is None else jnp.concatenate([z, self.embed(labels)], axis=-1)
    x = jnp.concatenate([x, jnp.ones_like(x[:, :1])], axis=-1)
    h = self._basis(mp.lrelu(self.head1(x)))
    h = upsample(self.head3(mp.lrelu(h)), self.widths[0])
    for i, stage in enumerate(self.stages):
      h, var = stage(h, jax.vmap(lambda k, i=i: jax.random.fold_in(k, 1000 + i))(keys))
      if i + 1 < len(self.stages):
        h = upsample(h * jax.lax.rsqrt(var).astype(h.dtype), self.widths[i + 1])
    return self.out(h, in_gain=self.gain[...] * jax.lax.rsqrt(var))


class R3GAN2Discriminator(nnx.Module):
  weight_projection = R3GAN2Generator.weight_projection
  def __init__(self, image_shape: Sequence[int], *, widths, blocks, ratio: float = 2.0,
               conditioning: str = "none", num_classes: int = 0, rngs: nnx.Rngs):
    widths, blocks = tuple(reversed(widths)), tuple(reversed(blocks))
    self.conditioning, self.widths = conditioning, widths
    conditional = conditioning != "none"
    self.extract = mp.Conv(image_shape[2], widths[0], 1, centered=False, rngs=rngs)
    self.stages = nnx.List([Stage(w, n, ratio, False, rngs) for w, n in zip(widths, blocks)])
    c = widths[-1]
    out = widths[-1] if conditional else 1     # the reference: G's first width
    self.head1 = mp.BiasedPointwise(c, 2 * c, rngs=rngs)
    self.basis = mp.Conv(2 * c, 2 * c, 4, groups=2 * c // GROUP, rngs=rngs)
    self.head3 = mp.Linear(2 * c, out, rngs=rngs)
    self.embed = ClassEmbedder(num_classes, out, rngs) if conditional else None

  def freeze_units(self):
    """Freeze-D's units from the input: the stages, the first with the input conv."""
    return [("extract", "stages/0")] + [(f"stages/{i}",) for i in range(1, len(self.stages))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], None)."""
    del train, rngs
    L.check_labels(labels, self.conditioning, "discriminator")
    h = self.extract(x)
    for i, stage in enumerate(self.stages):
      h, var = stage(h)
      if i + 1 < len(self.stages):
        h = downsample(h * jax.lax.rsqrt(var).astype(h.dtype), self.widths[i + 1])
    h = self.head1(resample(h, down_matrix), in_gain=jax.lax.rsqrt(var))
    c = h.shape[-1]
    w = self.basis.kernel().reshape(4, 4, GROUP, c // GROUP, GROUP).astype(h.dtype)
    h = jnp.einsum("bhwgc,hwcgo->bgo", mp.lrelu(h).reshape(*h.shape[:3], c // GROUP, GROUP),
                   w).reshape(h.shape[0], c)   # the grouped "valid" 4x4 on the 4x4 map
    h = self.head3(mp.lrelu(h))
    if self.embed is None:
      return h[:, 0], None
    e = self.embed(labels).astype(h.dtype)
    return jnp.sum(h * e, axis=-1) / math.sqrt(e.shape[-1]), None


def build(cfg, image_shape, num_classes, rngs):
  m = cfg.r3gan2
  arch = dict(widths=tuple(m.widths), blocks=tuple(m.blocks), ratio=float(m.ffn_ratio),
              conditioning=cfg.conditioning, num_classes=num_classes)
  g = R3GAN2Generator(cfg.latent_dim, image_shape, embed_dim=m.g_embed_dim, rngs=rngs, **arch)
  d = R3GAN2Discriminator(image_shape, rngs=rngs, **arch)
  return g, d


def check(cfg, image_shape):
  m = cfg.r3gan2
  n = len(m.widths)
  L.check_square("r3gan2", image_shape)
  L.check_stages("r3gan2", n, 8, image_shape)
  if len(m.blocks) != n:
    raise UserError(f"config.model.r3gan2.blocks needs one entry per stage ({n}); got "
                    f"{len(m.blocks)}.")
  for wd, nxt in zip(m.widths, tuple(m.widths[1:]) + (m.widths[-1],)):
    hidden = round(wd * m.ffn_ratio)
    if wd % GROUP or hidden % GROUP:
      raise UserError(f"config.model.r3gan2.widths: {wd} (and {hidden} = width x ffn_ratio) "
                      f"must be multiples of {GROUP}, the channels per convolution group.")
    if (4 * nxt) % wd or (4 * wd) % nxt:
      raise UserError(f"config.model.r3gan2.widths: {wd} -> {nxt} cannot be resampled "
                      "(4 x each must divide by the other).")
  L.check_plain(cfg, "r3gan2", "its magnitude-preserving layers keep it stable",
                "G through z and D by projection")


ARCHITECTURES.register("r3gan2", Architecture(build, check=check, fields={
    "widths": Field((512, 512, 512), "channels per stage, from 8 px up (D: reversed)"),
    "blocks": Field((4, 4, 4), "residual blocks per stage"),
    "ffn_ratio": Field(2.0, "channels inside a block = ffn_ratio x width", rule=Range(1)),
    "g_embed_dim": Field(64, "class embedding concatenated to z (conditional G)",
                         rule=Range(1)),
}))
