"""Magnitude-preserving layers (EDM2, Karras et al. CVPR 2024, Sec. 2) as R3GAN2 uses them.

R3GAN2 (IFeelBloated/R3GAN2 at 3b04752d, R3GAN/MagnitudePreservingLayers.py) rebuilds R3GAN
from EDM2's layers, which keep activations at unit magnitude by construction instead of by
normalisation layers or careful initialisation:
- Weights are normalised per output row: w / (1e-4 + ||w_row|| / sqrt(fan)) (each row RMS 1,
  "centered" rows have their mean removed first), and used as that times gain / sqrt(fan),
  so a unit-variance input gives a unit-variance output. R3GAN2 also *writes* the
  normalised weight back after every optimizer step (forced weight normalisation: here
  `forced_weight_norm`, applied as the network's weight projection after its optimizer
  update). EDM2's own layers normalise only in the forward pass during training and write
  back under no_grad before it; R3GAN2's form is the one implemented.
- Biases are an extra input column of a 1x1 layer's weight (a constant-one input), inside
  the normalised row; G's 1x1 layers carry a second extra column, the per-channel strength
  of one N(0, 1) noise map per sample. The per-input-channel gain (the residual stream's
  rsqrt(V)) scales only the real input columns.
- LeakyReLU(0.2) times 1 / sqrt(((1 + a^2) - (1 - a)^2 / pi) / 2) = 1.54646...: the
  inverse of its output's standard deviation for a unit Gaussian input (the variance
  E[f^2] - E[f]^2), as EDM2's mp_silu divides by 0.596.
Parameters start N(0, 1) (the normalisation makes their scale irrelevant). Layout NHWC,
kernels HWIO (output last: a row is w[..., o]).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.core.models.r3gan import grouped_conv

SLOPE = 0.2
LRELU_GAIN = 1.0 / math.sqrt(((1.0 + SLOPE ** 2) - (1.0 - SLOPE) ** 2 / math.pi) / 2.0)
EPS = 1e-4


class MPWeight(nnx.Param):
  """A weight normalised per output row (last axis) in the forward pass and after every
  optimizer step; metadata `centered`: rows have their mean removed too."""


def normalize(w, centered: bool):
  """Each output row (all axes but the last) to RMS 1: w / (EPS + ||w_row|| / sqrt(fan))."""
  w = w.astype(jnp.float32)
  axes = tuple(range(w.ndim - 1))
  if centered:
    w = w - jnp.mean(w, axis=axes, keepdims=True)
  fan = math.prod(w.shape[:-1])
  norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))
  return w / (EPS + norm / math.sqrt(fan))


def forced_weight_norm(module: nnx.Module) -> Optional[Callable]:
  """params -> params with every MPWeight of `module` replaced by its normalised value
  (R3GAN2's write-back after each optimizer step); None when the module has none."""
  found = jax.tree_util.tree_flatten_with_path(
      nnx.state(module, MPWeight), is_leaf=lambda x: isinstance(x, nnx.Variable))[0]
  centered = {jax.tree_util.keystr(path): bool(v.get_metadata().get("centered", False))
              for path, v in found}
  if not centered:
    return None

  def project(params):
    def one(path, leaf):
      key = jax.tree_util.keystr(path)
      if key.endswith(".value"):
        key = key[:-len(".value")]
      if key not in centered:
        return leaf
      return normalize(leaf, centered[key]).astype(leaf.dtype)
    return jax.tree_util.tree_map_with_path(one, params)
  return project


def lrelu(x):
  """Magnitude-preserving LeakyReLU: unit-variance output for a unit Gaussian input."""
  return jax.nn.leaky_relu(x, SLOPE) * jnp.asarray(LRELU_GAIN, x.dtype)


def _weight(param: MPWeight, gain=1.0):
  w = normalize(param[...], param.get_metadata().get("centered", False))
  return w * (gain / math.sqrt(math.prod(w.shape[:-1])))


class Conv(nnx.Module):
  """k x k convolution (stride 1, "same" padding, `groups` groups), no bias:
  weight (k, k, in/groups, out). in_gain (per input channel, groups=1) and out_gain (per
  output channel) scale the normalised weight, as R3GAN2's Gain argument does."""

  def __init__(self, cin: int, cout: int, k: int = 1, groups: int = 1, centered: bool = True,
               *, rngs: nnx.Rngs):
    self.k, self.groups = k, groups
    self.weight = MPWeight(jax.random.normal(rngs.params(), (k, k, cin // groups, cout)),
                           centered=centered)

  def kernel(self, in_gain=None, out_gain=None):
    w = _weight(self.weight)
    if in_gain is not None:
      w = w * jnp.reshape(in_gain, (1, 1, -1, 1))
    if out_gain is not None:
      w = w * jnp.reshape(out_gain, (1, 1, 1, -1))
    return w

  def __call__(self, x, in_gain=None, out_gain=None):
    w = self.kernel(in_gain, out_gain).astype(x.dtype)
    if self.k == 1 and self.groups == 1:
      return jnp.einsum("...c,cd->...d", x, w[0, 0])
    return grouped_conv(x, w, self.groups, self.k)


class Linear(nnx.Module):
  """x @ w with w (in, out) normalised per output column; no bias."""

  def __init__(self, cin: int, cout: int, centered: bool = True, *, rngs: nnx.Rngs):
    self.weight = MPWeight(jax.random.normal(rngs.params(), (cin, cout)), centered=centered)

  def __call__(self, x, gain=1.0):
    return x @ _weight(self.weight, gain).astype(x.dtype)


class BiasedPointwise(nnx.Module):
  """1x1 convolution with its bias as an extra input column (weight (in + 1, out), the
  row normalised with it: fan in + 1); with `noise`, a second extra column holds each
  output channel's strength of one N(0, 1) map per sample (G's noise input; weight
  (in + 2, out)). in_gain scales the real input columns only."""

  def __init__(self, cin: int, cout: int, noise: bool = False, centered: bool = True, *,
               rngs: nnx.Rngs):
    self.cin, self.noise = cin, noise
    extra = 2 if noise else 1
    self.weight = MPWeight(jax.random.normal(rngs.params(), (cin + extra, cout)),
                           centered=centered)

  def __call__(self, x, in_gain=None, noise=None):
    """noise: [B, H, W, 1] maps (required with `noise`)."""
    w = _weight(self.weight)
    w_in = w[:self.cin]
    if in_gain is not None:
      w_in = w_in * jnp.reshape(in_gain, (-1, 1))
    y = jnp.einsum("...c,cd->...d", x, w_in.astype(x.dtype)) + w[-1].astype(x.dtype)
    if self.noise:
      if noise is None:
        raise ValueError("a noisy BiasedPointwise needs its noise maps")
      y = y + noise.astype(x.dtype) * w[self.cin].astype(x.dtype)
    return y


def param_count(module: nnx.Module) -> int:
  return sum(int(v.size) for v in jax.tree.leaves(nnx.state(module, nnx.Param)))
