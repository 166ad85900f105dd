"""The oneDNN convolution provider: what `config.train.cpu_conv` turns on for XLA:CPU.

`jaxgan.ops.convs` asks the provider in scope (`convs.provided_by`) for each
convolution primal map; this one answers float32 maps with the oneDNN custom call
(onednn.py) and declines the rest, which XLA then runs:
- other dtypes (bfloat16 steps stay on XLA);
- maps producing fewer than MIN_OUT_CHANNELS channels: oneDNN measured slower there
  (DCGAN-64: the input gradient of the 1-channel first layer 13.4 vs 7.6 ms, the
  1-channel logit 0.6 vs 0.4 ms).
Each answer is lowered with lax.platform_dependent, the custom call for CPU and XLA's
own convolution for any other platform, so a step traced on a CPU host still lowers for
GPU/TPU (jax.export) without the CPU custom call.
"""
from __future__ import annotations

import warnings
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan.base.errors import UserError
from jaxgan.cpu import onednn

MODES = ("auto", "onednn", "xla")
MIN_OUT_CHANNELS = 8
_warned = [False]


class OneDNNConvs:
  """A `convs.ConvProvider` running float32 convolutions through oneDNN on CPU."""

  custom_call_targets = (onednn.TARGET,)   # what programs traced under it may call

  def __init__(self):
    onednn.load()   # builds once per machine, registers the FFI target; RuntimeError if not

  def __call__(self, kind, a, b, out_shape, stride, padding, xla):
    if a.dtype != jnp.float32 or b.dtype != jnp.float32:
      return None
    produced = {0: b.shape[3], 1: b.shape[2]}.get(kind)   # weight gradients: always
    if produced is not None and produced < MIN_OUT_CHANNELS:
      return None
    return lax.platform_dependent(
        a, b, cpu=lambda a, b: _call(kind, a, b, out_shape, stride, padding), default=xla)

  # Stateless: every instance is the same provider, for JAX's trace and compile caches
  # (the provider in scope is part of their keys, jaxgan/ops/convs.py).
  def __eq__(self, other):
    return type(other) is OneDNNConvs

  def __hash__(self):
    return hash(OneDNNConvs)

  def __repr__(self):
    return "OneDNNConvs()"


def _call(kind: int, a, b, out_shape, stride, padding):
  (pt, pb), (pl, pr) = padding
  i64 = lambda v: np.int64(int(v))
  return jax.ffi.ffi_call(onednn.TARGET, jax.ShapeDtypeStruct(tuple(out_shape), jnp.float32),
                          vmap_method="sequential")(
      a, b, kind=i64(kind), sh=i64(stride[0]), sw=i64(stride[1]), pt=i64(pt), pb=i64(pb),
      pl=i64(pl), pr=i64(pr))


def make(mode: str) -> Optional[OneDNNConvs]:
  """The provider for `config.train.cpu_conv`: None for "xla"; oneDNN for "onednn" (a
  one-line error when it cannot build) and for "auto" when it builds (else one warning,
  and None: XLA's convolutions)."""
  if mode not in MODES:
    raise UserError(f"config.train.cpu_conv={mode!r} is not one of {', '.join(MODES)}.")
  if mode == "xla":
    return None
  try:
    return OneDNNConvs()
  except RuntimeError as e:
    if mode == "onednn":
      raise UserError(f"config.train.cpu_conv='onednn' but the oneDNN convolutions are "
                      f"unavailable: {e}. Use cpu_conv='auto' to fall back to XLA's.") from None
    if not _warned[0]:
      _warned[0] = True
      warnings.warn(f"oneDNN convolutions unavailable, using XLA's (slower on CPU): {e}")
    return None
