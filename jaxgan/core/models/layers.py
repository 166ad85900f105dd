"""Building blocks shared by the architectures: activations, norms, spectral norm,
label conditioning. Kept tiny so every architecture file reads as its paper's table."""
from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxgan.base import sizes
from jaxgan.base.registry import Registry
from jaxgan.ops import convs

ACTIVATIONS: Registry[Callable[[jax.Array], jax.Array]] = Registry("activation")
ACTIVATIONS.register("relu", jax.nn.relu)
ACTIVATIONS.register("leaky_relu", functools.partial(jax.nn.leaky_relu, negative_slope=0.2))
ACTIVATIONS.register("elu", jax.nn.elu)
ACTIVATIONS.register("gelu", jax.nn.gelu)
ACTIVATIONS.register("swish", jax.nn.swish)
ACTIVATIONS.register("tanh", jnp.tanh)

NORMS = ("batch", "layer", "none")


def activation(name: str, leaky_slope: float = 0.2):
  if name == "leaky_relu":
    return functools.partial(jax.nn.leaky_relu, negative_slope=leaky_slope)
  return ACTIVATIONS.get(name)


def output(x, linear: bool):
  """G's last activation: tanh for images in [-1, 1]; none for normalised latents (a
  latent GAN, jaxgan/core/latent_space.py), which are not bounded."""
  return x if linear else jnp.tanh(x)


class Identity(nnx.Module):
  def __call__(self, x, *, train: bool = False):
    del train
    return x


class Norm(nnx.Module):
  """BatchNorm (momentum 0.9, eps 1e-5, as Keras/PyTorch DCGANs), LayerNorm or nothing.

  BatchNorm uses batch statistics whenever `train` is True and its running averages
  otherwise; the running averages live in the model state (nnx.BatchStat).
  """

  def __init__(self, kind: str, features: int, *, spatial: bool, rngs: nnx.Rngs):
    if kind not in NORMS:
      raise ValueError(f"Unknown norm {kind!r}. Valid norms: {', '.join(NORMS)}.")
    self.kind = kind
    if kind == "batch":
      self.layer = nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs)
    elif kind == "layer":
      # Per-example normalisation over (H, W, C) keeps examples independent, which
      # per-example gradient penalties require (Gulrajani et al. 2017, sec. 4).
      axes = (-3, -2, -1) if spatial else (-1,)
      self.layer = nnx.LayerNorm(features, reduction_axes=axes, epsilon=1e-5, rngs=rngs)
    else:
      self.layer = Identity()

  def __call__(self, x, *, train: bool):
    # The output keeps x's dtype: under mixed precision the float32 running statistics
    # would otherwise promote a bfloat16 activation back to float32.
    if self.kind == "batch":
      return self.layer(x, use_running_average=not train).astype(x.dtype)
    return self.layer(x).astype(x.dtype)


class SpectralNorm(nnx.SpectralNorm):
  """flax's spectral normalisation (Miyato et al. 2018: W / sigma(W), sigma from one power
  iteration on a persistent u per call), writing W / sigma back in W's own dtype.

  flax writes the normalised weight in the dtype promoted from (W, u, sigma). Under mixed
  precision (train.dtype=bfloat16, jaxgan/core/precision.py) W arrives in bfloat16 while u and
  sigma stay float32 state, so flax would scatter a float32 value into a bfloat16 weight,
  which JAX warns it will refuse in a future release. The power iteration still runs in
  float32 (u is float32); only the stored result takes W's dtype. Float32 runs are
  unchanged."""

  def _spectral_normalize_inplace(self, path, orig_param, update_stats):
    own = self.dtype
    self.dtype = own or orig_param.dtype
    try:
      super()._spectral_normalize_inplace(path, orig_param, update_stats)
    finally:
      self.dtype = own


def maybe_spectral(layer: nnx.Module, enabled: bool, rngs: nnx.Rngs) -> nnx.Module:
  """Wraps a layer in spectral normalisation (Miyato et al. 2018) when enabled."""
  return SpectralNorm(layer, rngs=rngs) if enabled else layer


def call_layer(layer: nnx.Module, x: jax.Array, *, train: bool) -> jax.Array:
  """Calls a plain or spectrally-normalised layer; power iteration only in training."""
  if isinstance(layer, nnx.SpectralNorm):  # SpectralNorm above, or a user's flax one
    return layer(x, update_stats=train)
  return layer(x)


def maxpool2(x):
  """2x2 max pooling with stride 2 (NHWC)."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class SelfAttention(nnx.Module):
  """Self-attention over the positions of a feature map (Zhang et al. 2019, SAGAN), as
  BigGAN and PyTorch-StudioGAN use it: 1x1 convs (no bias) to C/8 queries and keys and C/2
  values, keys and values max-pooled 2x2, softmax over the keys, a 1x1 conv back to C,
  scaled by a learned sigma that starts at 0 (the block starts as the identity)."""

  def __init__(self, c: int, *, spectral: bool, init: str, rngs: nnx.Rngs):
    mk = lambda a, b: maybe_spectral(Conv2D(a, b, 1, use_bias=False, rngs=rngs,
                                            **init_kwargs(init, a)), spectral, rngs)
    self.theta, self.phi, self.g, self.o = mk(c, c // 8), mk(c, c // 8), mk(c, c // 2), mk(
        c // 2, c)
    self.sigma = nnx.Param(jnp.zeros((1,), jnp.float32))

  def __call__(self, x, *, train: bool):
    b, h, w, c = x.shape
    f = lambda layer, v: call_layer(layer, v, train=train)
    q = f(self.theta, x).reshape(b, h * w, c // 8)
    k = maxpool2(f(self.phi, x)).reshape(b, h * w // 4, c // 8)
    v = maxpool2(f(self.g, x)).reshape(b, h * w // 4, c // 2)
    attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k), axis=-1)
    o = jnp.einsum("bqk,bkc->bqc", attn, v).reshape(b, h, w, c // 2)
    return x + self.sigma[...] * f(self.o, o)


def one_hot(labels: jax.Array | None, num_classes: int) -> jax.Array | None:
  if labels is None or num_classes <= 0:
    return None
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


CONDITIONINGS = ("none", "concat", "projection", "acgan")


def check_conditioning(conditioning: str, num_classes: int):
  if conditioning not in CONDITIONINGS:
    raise ValueError(f"Unknown conditioning {conditioning!r} (config.model.conditioning). "
                     f"Valid: {', '.join(CONDITIONINGS)}.")
  if conditioning != "none" and num_classes < 2:
    raise ValueError(f"Conditioning {conditioning!r} needs at least 2 classes, got "
                     f"{num_classes}.")


def check_plain(cfg, arch: str, why: str, how: str):
  """Refuses, in one line, the shared model options an architecture without normalisation
  layers ignores (`why` says what keeps it stable), and conditioning other than
  'projection' or 'none' (`how` says how it conditions G and D)."""
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  if cfg.d_spectral_norm or cfg.d_dropout or cfg.g_norm != "none" or cfg.d_norm != "none":
    raise UserError(f"config.model: the {arch} architecture has no normalisation, spectral "
                    f"norm or dropout ({why}); keep g_norm and d_norm 'none', "
                    "d_spectral_norm False and d_dropout 0.")
  if cfg.conditioning not in ("none", "projection"):
    raise UserError(f"config.model.conditioning={cfg.conditioning!r}: the {arch} "
                    f"architecture conditions {how}; use 'projection' or 'none'.")


NON_SQUARE = "dcgan, resnet, biggan, stylegan2, r3gan, mlp"   # archs that take H != W


def start_grid(arch: str, image_shape, n: int | None, rule: str, example: str):
  """(sh, sw): the grid of the first layer of a pyramid of `n` x2 steps up to the image
  (G's constant, basis, first linear map or transposed conv is made at it; D's last layer
  reads it). Non-square images keep each architecture's square rule on the short side (the
  caller's `n`, None where the short side breaks `rule`) and need both sides divisible by
  2**n, so the grid has the image's aspect ratio: a 256x512 StyleGAN2 starts from a 4x8
  constant, as the non-square StyleGAN2/3 forks build it. A square image gets (s, s), the
  square network unchanged. Raises a one-line UserError naming config.data.image_size."""
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  h, w = image_shape[0], image_shape[1]
  head = f"config.data.image_size={sizes.text((h, w))}: the {arch} architecture {rule}"
  if n is None:
    raise UserError(f"{head}; use e.g. {example}.")
  f = 2 ** n
  if h % f or w % f:
    fit = (h, w // f * f) if h < w else (h // f * f, w)
    raise UserError(f"{head}, and both sides divisible by 2**{n} = {f} (its {n} x2 steps); "
                    f"use e.g. {sizes.text(fit)}.")
  return h // f, w // f


def check_square(arch: str, image_shape):
  """Refuses non-square images, in one line, for an architecture whose reference builds
  square ones only."""
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  h, w = image_shape[0], image_shape[1]
  if h != w:
    raise UserError(f"config.data.image_size={sizes.text((h, w))}: the {arch} architecture "
                    "builds square images only (as its reference); use one side, e.g. "
                    f"{min(h, w)}, or an architecture that takes height,width: {NON_SQUARE}.")


def check_stages(arch: str, n: int, base: int, image_shape):
  """A pyramid of `n` stages from `base` px on the short side, doubling per stage, must
  build the image: its start grid (start_grid), or a one-line error naming
  config.data.image_size and config.model.<arch>.widths."""
  size = base * 2 ** (n - 1)
  rule = (f"with config.model.{arch}.widths of {n} stages, which build {size} px images "
          f"({base} px, then x2 per stage), needs a short side of {size}")
  ok = min(image_shape[0], image_shape[1]) == size
  return start_grid(arch, image_shape, n - 1 if ok else None, rule,
                    f"{size} or {size},{2 * size}, or one width per resolution")


def check_labels(labels, conditioning: str, who: str):
  if conditioning != "none" and labels is None:
    raise ValueError(f"The {who} is conditional ({conditioning}) but got no labels.")
  if conditioning == "none" and labels is not None:
    raise ValueError(f"The {who} is unconditional but was given labels; set "
                     "config.model.conditioning to use them.")


class GeneratorCondition(nnx.Module):
  """How G sees the label: appended to z as a one-hot vector (concat, acgan; Mirza &
  Osindero 2014, Odena et al. 2017) or as a learned class embedding (projection)."""

  def __init__(self, conditioning: str, num_classes: int, embed_dim: int, *, rngs: nnx.Rngs):
    self.conditioning, self.num_classes = conditioning, num_classes
    projection = conditioning == "projection"
    self.embed = nnx.Embed(num_classes, embed_dim, rngs=rngs) if projection else None
    self.dim = {"none": 0, "projection": embed_dim}.get(conditioning, num_classes)

  def __call__(self, z, labels):
    check_labels(labels, self.conditioning, "generator")
    if self.conditioning == "none":
      return z
    y = self.embed(labels) if self.embed is not None else one_hot(labels, self.num_classes)
    return jnp.concatenate([z, y.astype(z.dtype)], axis=-1)


class DiscriminatorCondition(nnx.Module):
  """How D uses the label.

  concat: the one-hot label joins the input (as H x W x classes maps for images).
  projection (Miyato & Koyama 2018): logit += <embed(y), phi(x)>, phi(x) the features
    that feed the output layer.
  acgan (Odena et al. 2017): D sees no label; an auxiliary head classifies phi(x).
  """

  def __init__(self, conditioning: str, num_classes: int, feature_dim: int, *,
               spectral_norm: bool = False, spectral_embed: bool = False,
               classifier_bias: bool = True, init: str | None = None, rngs: nnx.Rngs):
    """`spectral_embed` also normalises the projection embedding (SNGAN's D); `init`
    (config.model.init) initialises the embedding and the classifier; None keeps Flax's
    defaults (the DCGAN/MLP models)."""
    self.conditioning, self.num_classes = conditioning, num_classes
    self.input_dim = num_classes if conditioning == "concat" else 0
    embed = classifier = None
    if conditioning == "projection":
      e = embed_init(init) if init else {}
      embed = maybe_spectral(nnx.Embed(num_classes, feature_dim, rngs=rngs, **e),
                             spectral_embed, rngs)
    elif conditioning == "acgan":
      k = init_kwargs(init, feature_dim) if init else {}
      if not classifier_bias:
        k.pop("bias_init", None)
      classifier = maybe_spectral(
          nnx.Linear(feature_dim, num_classes, use_bias=classifier_bias, rngs=rngs, **k),
          spectral_norm, rngs)
    self.embed, self.classifier = embed, classifier

  def input(self, x, labels):
    """The discriminator input with the label appended (concat) or as is. An AC-GAN
    discriminator sees no label (its auxiliary head predicts it)."""
    if self.conditioning != "acgan":
      check_labels(labels, self.conditioning, "discriminator")
    if self.conditioning != "concat":
      return x
    y = one_hot(labels, self.num_classes)
    if x.ndim == 4:
      b, h, w, _ = x.shape
      maps = jnp.broadcast_to(y[:, None, None, :], (b, h, w, y.shape[-1]))
      return jnp.concatenate([x, maps.astype(x.dtype)], axis=-1)
    return jnp.concatenate([x, y.astype(x.dtype)], axis=-1)

  def output(self, logits, phi, labels, *, train: bool):
    """(logits with the projection term, class logits or None) from features phi."""
    phi = phi.reshape((phi.shape[0], -1))
    if self.embed is not None:
      logits = logits + jnp.sum(call_layer(self.embed, labels, train=train) * phi, axis=-1)
    cls = None if self.classifier is None else call_layer(self.classifier, phi, train=train)
    return logits, cls


# Weight initialisation, keyed by `config.model.init`.
#   pytorch: U(+-1/sqrt(fan_in)) for weights and biases (torch.nn.Linear/Conv defaults,
#            kaiming_uniform with a=sqrt(5)); what the PyTorch tutorials train with.
#   lecun:   Flax's default, N(0, 1/fan_in) truncated, zero bias.
#   glorot:  Keras' default, glorot uniform, zero bias.
#   dcgan:   N(0, 0.02), zero bias (Radford et al. 2016).
#   ortho:   orthogonal weights (Saxe et al. 2014), zero bias; embeddings too
#            (PyTorch-StudioGAN's "ortho", used by its SNGAN and BigGAN).
INITS = ("pytorch", "lecun", "glorot", "dcgan", "ortho")


def _fan_in(shape):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return int(np.prod(shape[:-1]))


def _torch_uniform(key, shape, dtype=jnp.float32, fan_in=None):
  bound = 1.0 / jnp.sqrt(fan_in or _fan_in(shape))
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def init_kwargs(init: str, fan_in: int, *, transpose_fan_in: int | None = None) -> dict:
  """kernel_init / bias_init keyword arguments for nnx.Linear / Conv / ConvTranspose."""
  if init not in INITS:
    raise ValueError(f"Unknown init {init!r} (config.model.init). Valid: {', '.join(INITS)}.")
  if init == "pytorch":
    # torch computes a ConvTranspose's fan_in from weight.size(1) * k*k = out_channels*k*k.
    f = transpose_fan_in or fan_in
    return {"kernel_init": functools.partial(_torch_uniform, fan_in=f),
            "bias_init": functools.partial(_torch_uniform, fan_in=f)}
  if init == "lecun":
    return {}
  if init == "glorot":
    return {"kernel_init": nnx.initializers.glorot_uniform()}
  if init == "ortho":
    return {"kernel_init": nnx.initializers.orthogonal()}
  return {"kernel_init": nnx.initializers.normal(0.02)}


def embed_init(init: str) -> dict:
  """embedding_init for nnx.Embed: orthogonal rows for 'ortho' (StudioGAN), N(0, 0.02) for
  'dcgan', otherwise Flax's default."""
  if init == "ortho":
    return {"embedding_init": nnx.initializers.orthogonal()}
  if init == "dcgan":
    return {"embedding_init": nnx.initializers.normal(0.02)}
  return {}


def pair(k) -> tuple:
  """A kernel size as (kh, kw): an int is square; DCGAN's stem and head take (sh, sw), the
  start grid of a non-square image (start_grid)."""
  return (k, k) if isinstance(k, int) else tuple(k)


class _ConvParams(nnx.Module):
  """Kernel (kh, kw, a, b), optional bias (out_features) and the geometry of a convolution."""

  def __init__(self, kernel_shape, out_features: int, kernel_size, stride: int,
               padding: str, use_bias: bool, kernel_init, bias_init, rngs: nnx.Rngs):
    if padding not in ("SAME", "VALID"):
      raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
    kernel_init = kernel_init or nnx.initializers.lecun_normal()
    bias_init = bias_init or nnx.initializers.zeros_init()
    self.kernel = nnx.Param(kernel_init(rngs.params(), kernel_shape))
    self.bias = nnx.Param(bias_init(rngs.params(), (out_features,))) if use_bias else None
    self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

  def _add_bias(self, y):
    return y if self.bias is None else y + self.bias[...]


class Conv2D(_ConvParams):
  """A 2-D convolution (NHWC, kernel HWIO) on `convs.conv`: fast backward of any order.

  padding "SAME" (TF/Flax; symmetric for k4/s2 on even sizes, i.e. PyTorch padding=1) or
  "VALID". `kernel_size`: k, or (kh, kw)."""

  def __init__(self, in_features: int, out_features: int, kernel_size, *,
               stride: int = 1, padding: str = "SAME", use_bias: bool = True,
               kernel_init=None, bias_init=None, rngs: nnx.Rngs):
    super().__init__((*pair(kernel_size), in_features, out_features), out_features,
                     kernel_size, stride, padding, use_bias, kernel_init, bias_init, rngs)

  def __call__(self, x):
    ks, s = pair(self.kernel_size), self.stride
    if self.padding == "SAME":
      pad = tuple(convs.same_padding(n, k, s) for n, k in zip(x.shape[1:3], ks))
    else:
      pad = ((0, 0), (0, 0))
    return self._add_bias(convs.conv(x, self.kernel[...].astype(x.dtype), (s, s), pad))


class ConvTranspose2D(_ConvParams):
  """The adjoint of a Conv2D (PyTorch ConvTranspose2d semantics) on `convs.conv_transpose`:
  "SAME" multiplies the size by `stride`; "VALID" maps n -> (n - 1) * stride + k.
  The kernel has the shape of the convolution it is the adjoint of: (kh, kw, out, in);
  `kernel_size`: k, or (kh, kw)."""

  def __init__(self, in_features: int, out_features: int, kernel_size, *,
               stride: int = 1, padding: str = "SAME", use_bias: bool = True,
               kernel_init=None, bias_init=None, rngs: nnx.Rngs):
    super().__init__((*pair(kernel_size), out_features, in_features), out_features,
                     kernel_size, stride, padding, use_bias, kernel_init, bias_init, rngs)

  def __call__(self, h):
    ks, s = pair(self.kernel_size), self.stride
    if self.padding == "SAME":
      out_hw = (h.shape[1] * s, h.shape[2] * s)
      pad = tuple(convs.same_padding(n, k, s) for n, k in zip(out_hw, ks))
    else:
      out_hw = tuple((n - 1) * s + k for n, k in zip(h.shape[1:3], ks))
      pad = ((0, 0), (0, 0))
    return self._add_bias(
        convs.conv_transpose(h, self.kernel[...].astype(h.dtype), (s, s), pad, out_hw))


def _fmix32(h):
  """MurmurHash3's 32-bit finaliser: a bijection of uint32 with full avalanche."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def dropout_keep_mask(key: jax.Array, shape, rate: float) -> jax.Array:
  """Boolean keep-mask with P(keep) = 1 - rate (quantised to 2^-32), a function of `key`.

  Counter-based: element i's 32 bits are fmix32(fmix32(i * golden + s0) ^ s1), with
  (s0, s1) 64 bits drawn from `key` by jax.random. XLA fuses this into the dropout
  multiply, so no random tensor is materialised: the threefry stream of
  `jax.random.bernoulli` (a rolled loop over a materialised uint32 tensor on XLA:CPU) was
  ~100 ms of each 1.3 s dcgan64 step on the 2-core CPU. The masks are reproducible from
  the key and pass the statistical checks in tests/test_dropout.py (keep rate,
  neighbour and cross-key correlation); the stream is for dropout, not for cryptography."""
  n = math.prod(shape)
  if n >= 2**32:
    raise ValueError(f"dropout mask of {n} elements: at most 2**32 - 1 per call")
  seeds = jax.random.bits(key, (2,), jnp.uint32)
  i = lax.iota(jnp.uint32, n).reshape(shape) if n else jnp.zeros(shape, jnp.uint32)
  h = _fmix32(_fmix32(i * jnp.uint32(0x9E3779B9) + seeds[0]) ^ seeds[1])
  return h >= jnp.uint32(min(round(rate * 2.0**32), 2**32 - 1))


class Dropout(nnx.Module):
  """Inverted dropout (same semantics as nnx.Dropout) with a cheaper mask: see
  `dropout_keep_mask`. `rngs` is a key array, required when not deterministic."""

  def __init__(self, rate: float):
    if not 0.0 <= rate < 1.0:
      raise ValueError(f"dropout rate must be in [0, 1), got {rate}.")
    self.rate = rate

  def __call__(self, x, *, deterministic: bool, rngs: jax.Array | None = None):
    if deterministic or self.rate == 0.0:
      return x
    if rngs is None:
      raise ValueError("Dropout in training mode needs a key: pass rngs=<jax.random key>.")
    keep = dropout_keep_mask(rngs, x.shape, self.rate)
    return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros((), x.dtype))
