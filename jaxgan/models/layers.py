"""Building blocks shared by the architectures: activations, norms, spectral norm,
label conditioning. Kept tiny so every architecture file reads as its paper's table."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.registry import Registry

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
    if self.kind == "batch":
      return self.layer(x, use_running_average=not train)
    return self.layer(x)


def maybe_spectral(layer: nnx.Module, enabled: bool, rngs: nnx.Rngs) -> nnx.Module:
  """Wraps a layer in spectral normalisation (Miyato et al. 2018) when enabled."""
  return nnx.SpectralNorm(layer, rngs=rngs) if enabled else layer


def call_layer(layer: nnx.Module, x: jax.Array, *, train: bool) -> jax.Array:
  """Calls a plain or spectrally-normalised layer; power iteration only in training."""
  if isinstance(layer, nnx.SpectralNorm):
    return layer(x, update_stats=train)
  return layer(x)


def one_hot(labels: jax.Array | None, num_classes: int) -> jax.Array | None:
  if labels is None or num_classes <= 0:
    return None
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def concat_label_channels(x: jax.Array, y_onehot: jax.Array | None) -> jax.Array:
  """Appends the one-hot label broadcast to an H x W x classes map (cGAN critic input)."""
  if y_onehot is None:
    return x
  b, h, w, _ = x.shape
  maps = jnp.broadcast_to(y_onehot[:, None, None, :], (b, h, w, y_onehot.shape[-1]))
  return jnp.concatenate([x, maps.astype(x.dtype)], axis=-1)


def check_labels(labels, num_classes: int, who: str):
  if num_classes > 0 and labels is None:
    raise ValueError(f"The {who} is conditional ({num_classes} classes) but got no labels.")
  if num_classes <= 0 and labels is not None:
    raise ValueError(f"The {who} is unconditional but was given labels; set "
                     "config.model.conditioning to use them.")


# Weight initialisation, keyed by `config.model.init`.
#   pytorch: U(+-1/sqrt(fan_in)) for weights and biases (torch.nn.Linear/Conv defaults,
#            kaiming_uniform with a=sqrt(5)); what the PyTorch tutorials train with.
#   lecun:   Flax's default, N(0, 1/fan_in) truncated, zero bias.
#   glorot:  Keras' default, glorot uniform, zero bias.
#   dcgan:   N(0, 0.02), zero bias (Radford et al. 2016).
INITS = ("pytorch", "lecun", "glorot", "dcgan")


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
  return {"kernel_init": nnx.initializers.normal(0.02)}
