"""StyleGAN2's layers (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), with the facts of the authors' StyleGAN2-ADA code (NVlabs/stylegan2-ada-pytorch
d72cc7d, training/networks.py): equalized learning rate, the mapping network, modulated /
demodulated convolutions, resampling convolutions and minibatch standard deviation.

Equalized learning rate (Karras et al. 2018): every weight is stored as N(0, 1) (divided by
the layer's learning-rate multiplier) and scaled at run time by lr_mult / sqrt(fan_in), so
Adam's steps are the same size for every layer; biases are scaled by lr_mult. Activations
are leaky ReLU (0.2) times sqrt(2), clamped to +-256 (the reference's conv_clamp, which it
applies in float32 too).

Layout is NHWC with HWIO kernels (the reference: NCHW, OIHW); parameter counts are equal,
and a port of its weights transposes them (and flips the kernels of x2-upsampling
convolutions, which it applies as true convolutions).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxgan.core.models import fir

SQRT2 = math.sqrt(2.0)
CLAMP = 256.0


def lrelu(x, gain: float = 1.0, clamp: float | None = CLAMP):
  """leaky ReLU (0.2) x sqrt(2) x gain, clamped to +-clamp x gain (bias_act's order)."""
  y = jax.nn.leaky_relu(x, 0.2) * (SQRT2 * gain)
  return y if clamp is None else jnp.clip(y, -clamp * gain, clamp * gain)


def normalize_2nd_moment(x, eps: float = 1e-8):
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class FullyConnected(nnx.Module):
  """y = x (W lr_mult / sqrt(in)) + b lr_mult; W ~ N(0, 1) / lr_mult, b = bias_init."""

  def __init__(self, din: int, dout: int, *, lr_mult: float = 1.0, bias_init: float = 0.0,
               act: bool = False, rngs: nnx.Rngs):
    self.weight = nnx.Param(jax.random.normal(rngs.params(), (din, dout)) / lr_mult)
    self.bias = nnx.Param(jnp.full((dout,), bias_init, jnp.float32))
    self.gain, self.lr_mult, self.act = lr_mult / math.sqrt(din), lr_mult, act

  def __call__(self, x):
    y = x @ (self.weight[...] * self.gain) + self.bias[...] * self.lr_mult
    return lrelu(y, clamp=None) if self.act else y


class WAvg(nnx.BatchStat):
  """The running mean of w (a statistic, not a parameter: updated in training forwards)."""


class Mapping(nnx.Module):
  """z (normalised), [embed(c) (normalised)] -> `layers` FC layers (lr_mult 0.01) -> w.

  `track_avg`: keep w_avg <- beta w_avg + (1 - beta) mean(w) over training forwards (G's
  mapping; for the truncation trick). D's label mapping (z_dim 0) has none."""

  def __init__(self, z_dim: int, c_dim: int, w_dim: int, layers: int, *,
               lr_mult: float = 0.01, track_avg: bool = True, beta: float = 0.995,
               rngs: nnx.Rngs):
    self.z_dim, self.beta = z_dim, beta
    self.embed = FullyConnected(c_dim, w_dim, rngs=rngs) if c_dim else None
    dims = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * layers
    self.fcs = nnx.List([FullyConnected(a, b, lr_mult=lr_mult, act=True, rngs=rngs)
                         for a, b in zip(dims[:-1], dims[1:])])
    self.w_avg = WAvg(jnp.zeros((w_dim,), jnp.float32)) if track_avg else None

  def __call__(self, z, c_onehot=None, *, update_avg: bool = False):
    parts = [normalize_2nd_moment(z)] if self.z_dim else []
    if self.embed is not None:
      parts.append(normalize_2nd_moment(self.embed(c_onehot)))
    x = jnp.concatenate(parts, axis=-1)
    for fc in self.fcs:
      x = fc(x)
    if update_avg and self.w_avg is not None:
      mean = jnp.mean(lax.stop_gradient(x), axis=0)
      self.w_avg[...] = self.beta * self.w_avg[...] + (1.0 - self.beta) * mean
    return x


def conv(x, w, padding):
  return lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_up2(x, w):
  """3x3 convolution of the x2-upsampled image (conv2d_resample with up=2): a stride-2
  transposed convolution (the kernel as a true convolution), then the FIR filter (gain 4)
  over it padded by one. [B, H, W, I] -> [B, 2H, 2W, O]."""
  y = lax.conv_general_dilated(x, w[::-1, ::-1].astype(x.dtype), (1, 1), ((2, 2), (2, 2)),
                               lhs_dilation=(2, 2),
                               dimension_numbers=("NHWC", "HWIO", "NHWC"))  # 2H + 1
  return fir.apply(y, fir.valid_matrix(y.shape[1], 1, 2.0), fir.valid_matrix(y.shape[2], 1, 2.0))


def conv_down2(x, w):
  """3x3 convolution with /2 downsampling (conv2d_resample with down=2): the FIR filter
  over the image padded by two, then a stride-2 valid convolution. [B, H, W, I] ->
  [B, H/2, W/2, O]."""
  y = fir.apply(x, fir.valid_matrix(x.shape[1], 2, 1.0), fir.valid_matrix(x.shape[2], 2, 1.0))
  return lax.conv_general_dilated(y, w.astype(y.dtype), (2, 2), "VALID",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def modulated_conv(x, weight, styles, *, demodulate: bool = True, up: bool = False):
  """StyleGAN2's modulated convolution (sec. 2.2): the kernel scaled per input channel by
  each example's style, and, with `demodulate`, per output channel to unit norm,
  rsqrt(sum (w s)^2 + 1e-8). Run as the reference's non-fused path: the input scaled by s,
  one shared convolution, the output scaled by the demodulation coefficients (the same
  numbers as a per-example convolution, without a grouped convolution). x [B, H, W, I],
  weight [k, k, I, O], styles [B, I]."""
  y = x * styles[:, None, None, :]
  k = weight.shape[0]
  if up:
    y = conv_up2(y, weight)
  else:
    y = conv(y, weight, ((k // 2, k // 2), (k // 2, k // 2)))
  if demodulate:
    d = lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)
    y = y * d[:, None, None, :]
  return y


class Conv(nnx.Module):
  """D's convolution (Conv2dLayer): W ~ N(0, 1) x 1/sqrt(in k k), optional bias, optional
  leaky ReLU, optional /2 downsampling; `gain` scales the output (and the clamp)."""

  def __init__(self, din: int, dout: int, k: int, *, act: bool = True, bias: bool = True,
               down: bool = False, clamp: float | None = CLAMP, rngs: nnx.Rngs):
    self.weight = nnx.Param(jax.random.normal(rngs.params(), (k, k, din, dout)))
    self.bias = nnx.Param(jnp.zeros((dout,), jnp.float32)) if bias else None
    self.wgain = 1.0 / math.sqrt(din * k * k)
    self.k, self.act, self.down, self.clamp = k, act, down, clamp

  def __call__(self, x, gain: float = 1.0):
    w = self.weight[...] * self.wgain
    if self.down and self.k == 1:
      y = conv(fir.down2(x), w, "VALID")
    elif self.down:
      y = conv_down2(x, w)
    else:
      y = conv(x, w, ((self.k // 2, self.k // 2),) * 2)
    if self.bias is not None:
      y = y + self.bias[...]
    if self.act:
      return lrelu(y, gain, self.clamp)
    y = y * gain
    return y if self.clamp is None else jnp.clip(y, -self.clamp * gain, self.clamp * gain)


def minibatch_stddev(x, group_size: int, eps: float = 1e-8):
  """Appends one channel: the standard deviation of each feature over a group of examples,
  averaged (Karras et al. 2018). Groups are strided as in the reference (example n is in
  group n mod (N / G)); G = the largest divisor of N up to `group_size`."""
  n = x.shape[0]
  g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
  y = x.reshape(g, n // g, *x.shape[1:])
  y = jnp.sqrt(jnp.var(y, axis=0) + eps)               # biased variance, eps inside
  y = jnp.mean(y, axis=(1, 2, 3))                      # [N / G]
  y = jnp.tile(y, g)[:, None, None, None]              # example n <- group n mod (N / G)
  return jnp.concatenate([x, jnp.broadcast_to(y, (*x.shape[:3], 1))], axis=-1)
