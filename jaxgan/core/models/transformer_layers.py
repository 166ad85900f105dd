"""Transformer parts for GAN generators and discriminators on patch tokens (GAT: Hyun, Lee
and Heo, "Scalable GANs with Transformers", arXiv 2509.24935; code github.com/hse1032/GAT at
21a2dd09fcee5b8b8849302dc2ac4dd66236d268, models/{custom_layers,pos_embed,swiglu_ffn}.py).

Tokens are (B, T, H) with T = gh * gw patches in row-major order (token index = row * gw +
col). Initialisers follow the reference: every Linear is Xavier-uniform over the full
(out, in) matrix with bias 0 (`xavier(gain)`), so a fused q|k|v projection counts 3H as its
fan-out. Norms compute their mean of squares in float32 whatever the compute dtype.
"""
from __future__ import annotations

import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def xavier(gain: float = 1.0):
  """Xavier/Glorot uniform with `gain` (PyTorch's xavier_uniform_): U(-a, a), a = gain *
  sqrt(6 / (fan_in + fan_out)); for an (in, out) kernel."""
  return jax.nn.initializers.variance_scaling(gain * gain, "fan_avg", "uniform")


def linear(din: int, dout: int, rngs: nnx.Rngs, gain: float = 1.0, bias: bool = True):
  return nnx.Linear(din, dout, use_bias=bias, kernel_init=xavier(gain),
                    bias_init=jax.nn.initializers.zeros, rngs=rngs)


def rms_norm(x, eps: float):
  """x / sqrt(mean(x^2) + eps) over the last axis, in float32, back in x's dtype."""
  x32 = x.astype(jnp.float32)
  return (x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)).astype(x.dtype)


class RMSNorm(nnx.Module):
  """RMSNorm over the last axis, with a learned gain (init 1) when `affine`."""

  def __init__(self, dim: int, *, affine: bool = True, eps: float = 1e-6):
    self.eps = eps
    self.scale = nnx.Param(jnp.ones((dim,), jnp.float32)) if affine else None

  def __call__(self, x):
    y = rms_norm(x, self.eps)
    return y if self.scale is None else y * self.scale[...].astype(y.dtype)


class EqualLinear(nnx.Module):
  """StyleGAN's equalised-learning-rate Linear (reference EqualLinear): the stored weight
  is Xavier with gain 1/lr_mult and both weight and bias are multiplied by lr_mult in the
  forward pass, so the layer starts as a gain-1 Xavier Linear and Adam moves it lr_mult as
  fast as the other layers."""

  def __init__(self, din: int, dout: int, lr_mult: float, rngs: nnx.Rngs):
    self.lr_mult = float(lr_mult)
    self.kernel = nnx.Param(xavier(1.0 / lr_mult)(rngs.params(), (din, dout), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((dout,), jnp.float32))

  def __call__(self, x):
    w = self.kernel[...].astype(x.dtype) * self.lr_mult
    return x @ w + self.bias[...].astype(x.dtype) * self.lr_mult


@functools.lru_cache(maxsize=None)
def sincos_table(width: int, gh: int, gw: int) -> np.ndarray:
  """The fixed 2-D sin-cos position table (MAE's, as GAT's G input and D's position
  embedding), (gh * gw, width) in float32: channels [sin(col w), cos(col w), sin(row w),
  cos(row w)], each width/4 wide, w_k = 10000^(-k / (width / 4)), integer positions."""
  quarter = width // 4
  omega = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
  rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
  def half(pos):
    out = pos.reshape(-1)[:, None] * omega[None]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)
  return np.concatenate([half(cols), half(rows)], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=None)
def rope_tables(head_dim: int, gh: int, gw: int, theta: float = 10000.0
                ) -> Tuple[np.ndarray, np.ndarray]:
  """cos and sin (gh * gw, head_dim) of GAT's 2-D rotary embedding (reference
  VisionRotaryEmbeddingFast with dim = head_dim / 2): frequencies theta^(-4k / head_dim),
  k < head_dim / 4, each used by two adjacent channels; the first head_dim / 2 channels
  rotate by the token's row, the rest by its column; integer positions."""
  freqs = theta ** (-4.0 * np.arange(head_dim // 4, dtype=np.float64) / head_dim)
  def axis(n):
    return np.repeat(np.arange(n, dtype=np.float64)[:, None] * freqs[None], 2, axis=1)
  row, col = axis(gh), axis(gw)                        # (gh, hd/2), (gw, hd/2)
  ang = np.concatenate([np.repeat(row, gw, axis=0), np.tile(col, (gh, 1))], axis=1)
  return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x, cos, sin):
  """Rotates channel pairs (2m, 2m+1) of x (B, T, heads, hd) by the tables' angles:
  (a, b) -> (a cos - b sin, b cos + a sin)."""
  pairs = x.reshape(*x.shape[:-1], -1, 2)
  rotated = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)
  cos, sin = cos[:, None, :].astype(x.dtype), sin[:, None, :].astype(x.dtype)
  return x * cos + rotated * sin


def attention_implementation(setting: str, dtype) -> str | None:
  """jax.nn.dot_product_attention's `implementation` for `setting` (config.model.gat.
  attention): 'auto' is cuDNN's fused flash attention on a GPU in bfloat16 or float16 (the
  types it takes) and XLA's otherwise; 'xla' and 'cudnn' force one. (jax 0.12's own None
  means XLA's.)"""
  if setting == "auto":
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    return "cudnn" if half and jax.default_backend() == "gpu" else "xla"
  return setting


class Attention(nnx.Module):
  """Multi-head self-attention: fused q|k|v Linear (bias), RMSNorm of q and of k over the
  head dim with learned gains (QK-norm), 2-D RoPE on the last `rope` tokens (a cls token in
  front is not rotated), softmax(q k^T / sqrt(hd)) v through jax.nn.dot_product_attention
  (`implementation`: see attention_implementation), output Linear (bias)."""

  def __init__(self, width: int, heads: int, rngs: nnx.Rngs, implementation: str = "auto"):
    self.heads, self.implementation = heads, implementation
    self.qkv = linear(width, 3 * width, rngs)
    self.q_norm = RMSNorm(width // heads, eps=1e-6)
    self.k_norm = RMSNorm(width // heads, eps=1e-6)
    self.proj = linear(width, width, rngs)

  def __call__(self, x, rope):
    b, t, w = x.shape
    qkv = self.qkv(x).reshape(b, t, 3, self.heads, w // self.heads)
    q, k, v = self.q_norm(qkv[:, :, 0]), self.k_norm(qkv[:, :, 1]), qkv[:, :, 2]
    cos, sin = rope
    n = cos.shape[0]                      # tokens with a position: the last n
    rot = lambda a: jnp.concatenate([a[:, :t - n], apply_rope(a[:, t - n:], cos, sin)], 1)
    q, k = rot(q), rot(k)
    out = jax.nn.dot_product_attention(
        q, k, v, implementation=attention_implementation(self.implementation, q.dtype))
    return self.proj(out.reshape(b, t, w))


def swiglu_hidden(width: int, mlp_ratio: float) -> int:
  """The reference SwiGLUFFN's hidden width: int(2/3 * int(width * mlp_ratio))."""
  return int(2 / 3 * int(width * mlp_ratio))


class SwiGLU(nnx.Module):
  """w3(silu(x1) * x2) with [x1 | x2] = w12(x) (Shazeer 2020; the reference SwiGLUFFN)."""

  def __init__(self, width: int, mlp_ratio: float, rngs: nnx.Rngs):
    hidden = swiglu_hidden(width, mlp_ratio)
    self.w12 = linear(width, 2 * hidden, rngs)
    self.w3 = linear(hidden, width, rngs)

  def __call__(self, x):
    x1, x2 = jnp.split(self.w12(x), 2, axis=-1)
    return self.w3(jax.nn.silu(x1) * x2)


def patchify(x, p: int):
  """(B, H, W, C) -> (B, H/p * W/p, p * p * C): a token's vector is [row-in-patch,
  col-in-patch, channel], channel fastest (a stride-p p x p convolution's receptive field)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(tokens, p: int, gh: int, gw: int):
  """The inverse of `patchify`: (B, gh * gw, p * p * C) -> (B, gh * p, gw * p, C)."""
  b, _, d = tokens.shape
  c = d // (p * p)
  x = tokens.reshape(b, gh, gw, p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, gh * p, gw * p, c)
