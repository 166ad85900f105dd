"""Convolutions whose backward passes are ordinary convolutions (fast on XLA:CPU).

XLA:CPU runs the dilated convolution that a transposed convolution's weight gradient
lowers to about 30x slower than an ordinary one (../shared/docs/PERF_NOTES.md). Two places
hit it: the generator's transposed convolutions, and the gradient penalty's double
backward (the parameter gradient of a convolution's input gradient, itself a transposed
convolution). `conv` and `conv_transpose` below are exact adjoints of each other,
<g, conv_transpose(h; W)> = <conv(g; W), h>, and each one's custom VJP is written with
the other and with the *ordinary* convolution's weight gradient, so every backward pass
of every order stays on the fast path and remains differentiable (for the penalty).

A platform may run the three primal maps below (`_forward`, `_backward_data`,
`_backward_weights`: exactly a convolution library's three primitives) itself: a
*convolution provider*, installed for the programs traced inside `provided_by(provider)`
(a JAX user context: scoped, nested scopes restore, part of JAX's trace cache keys). The
custom VJPs stay as they are, so every order of derivative goes to the provider too.
Without one (the default, and always on GPU/TPU) everything here is plain XLA. The run
installs jaxgan/cpu/conv_provider.py's oneDNN provider on CPU (`config.train.cpu_conv`,
jaxgan/run/platform.py); the core never imports it.

Layouts are NHWC / HWIO. `conv_transpose(h; W)` maps C_out -> C_in channels with the
kernel of the convolution it is the adjoint of (PyTorch's ConvTranspose2d semantics:
ConvTranspose2d(k, s, p) is the adjoint of Conv2d(k, s, p)).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Optional, Protocol, Tuple

import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")

# kinds of primal map a provider is asked for
FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS = 0, 1, 2


class ConvProvider(Protocol):
  """Runs one primal map, or declines (returns None) and XLA runs it.

  kind: FORWARD (a=x, b=w), BACKWARD_DATA (a=dy, b=w) or BACKWARD_WEIGHTS (a=x, b=dy);
  out_shape: the result's shape; xla(a, b): the XLA computation, for platforms the
  provider does not cover (it may lower both with lax.platform_dependent)."""

  def __call__(self, kind: int, a: jax.Array, b: jax.Array, out_shape: Tuple[int, ...],
               stride, padding, xla: Callable) -> Optional[jax.Array]: ...


# A JAX user context, not a plain context variable: its value is part of JAX's tracing and
# compilation cache keys, so a function traced under one provider is traced again under
# another instead of silently reusing the first trace (custom_vjp traces are cached). The
# value must be hashable; equal providers share traces. Thread-local, like JAX's config.
_PROVIDER = jax.make_user_context(None)


@contextlib.contextmanager
def provided_by(provider: Optional[ConvProvider]):
  """Programs traced inside run their convolutions' primal maps through `provider`
  (None: XLA); the previous provider is back when the scope ends."""
  with _PROVIDER(provider):
    yield provider


def current_provider() -> Optional[ConvProvider]:
  return _PROVIDER.value


def _map(kind, a, b, out_shape, stride, padding, xla):
  provider = _PROVIDER.value
  out = None if provider is None else provider(kind, a, b, tuple(int(d) for d in out_shape),
                                                stride, padding, xla)
  return xla(a, b) if out is None else out


def _out_hw(in_hw, w_shape, stride, padding):
  return tuple((n + lo + hi - k) // s + 1
               for n, k, s, (lo, hi) in zip(in_hw, w_shape[:2], stride, padding))


def _forward(x, w, stride, padding):
  out = (x.shape[0], *_out_hw(x.shape[1:3], w.shape, stride, padding), w.shape[3])
  return _map(FORWARD, x, w, out, stride, padding,
              lambda x, w: _plain_conv(x, w, stride, padding))


def _backward_data(h, w, stride, padding, in_hw):
  return _map(BACKWARD_DATA, h, w, (h.shape[0], *in_hw, w.shape[2]), stride, padding,
              lambda h, w: _plain_conv_transpose(h, w, stride, padding, in_hw))


def _backward_weights(x, dy, w_shape, stride, padding):
  return _map(BACKWARD_WEIGHTS, x, dy, w_shape, stride, padding,
              lambda x, dy: _weight_grad(x, dy, w_shape, stride, padding))


def _plain_conv(x, w, stride, padding):
  return lax.conv_general_dilated(x, w, stride, padding, dimension_numbers=_DN)


def _weight_grad(x, dy, w_shape, stride, padding):
  """d<dy, conv(x; W)>/dW: the ordinary (fast) convolution weight gradient."""
  _, vjp = jax.vjp(lambda w: _plain_conv(x, w, stride, padding),
                   jnp.zeros(w_shape, x.dtype))
  return vjp(dy)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x, w, stride: Tuple[int, int], padding: Tuple[Tuple[int, int], ...]):
  """lax.conv_general_dilated(x, w, stride, padding) with a fast backward of any order."""
  return _forward(x, w, stride, padding)


# The fwd rules call the custom_vjp functions themselves (not their primal bodies): under
# an outer derivative (the gradient penalty differentiates a gradient) the primal is then
# again a function with these rules, so no derivative of any order reaches the oneDNN
# provider's primitive, which has none of its own.
def _conv_fwd(x, w, stride, padding):
  return conv(x, w, stride, padding), (x, w)


def _conv_bwd(stride, padding, res, dy):
  x, w = res
  dx = conv_transpose(dy, w, stride, padding, x.shape[1:3])
  return dx, weight_grad(x, dy, tuple(w.shape), stride, padding)


conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def weight_grad(x, dy, w_shape, stride, padding):
  """d<dy, conv(x; W)>/dW, differentiable in x and dy (the gradient penalty's double
  backward needs it): <G, weight_grad(x, dy)> = <dy, conv(x; G)>, so its cotangents
  are conv_transpose(dy; G) for x and conv(x; G) for dy."""
  return _backward_weights(x, dy, w_shape, stride, padding)


def _weight_grad_fwd(x, dy, w_shape, stride, padding):
  return weight_grad(x, dy, w_shape, stride, padding), (x, dy)


def _weight_grad_bwd(w_shape, stride, padding, res, g):
  x, dy = res
  return conv_transpose(dy, g, stride, padding, x.shape[1:3]), conv(x, g, stride, padding)


weight_grad.defvjp(_weight_grad_fwd, _weight_grad_bwd)


def _space_to_depth(x, s: int):
  b, hh, ww, c = x.shape
  x = x.reshape(b, hh // s, s, ww // s, s, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, hh // s, ww // s, s * s * c)


def _unstrided_conv(x, w, stride, padding):
  """conv(x; w, stride, padding) computed as a stride-1 convolution: the zero-padded input
  is folded space-to-depth (s x s blocks into channels) and the kernel likewise, so
  k x k / stride s becomes ceil(k/s) x ceil(k/s) / stride 1. Same result; its linear
  transpose (the transposed convolution) is then an ordinary stride-1 convolution instead
  of the input-dilated one that XLA:CPU runs about 2x slower, with 3/4 of its inputs zero."""
  (s, s2), k = stride, w.shape[0]
  if s != s2 or w.shape[1] != k:
    return _plain_conv(x, w, stride, padding)
  kp = -(-k // s) * s
  if kp != k:  # a zero-padded kernel computes the same outputs
    w = jnp.pad(w, ((0, kp - k), (0, kp - k), (0, 0), (0, 0)))
  (pl, ph), (ql, qh) = padding
  hh, ww = x.shape[1], x.shape[2]
  oh, ow = _out_hw((hh, ww), (k, k), stride, padding)
  kk = kp // s
  hn, wn = (oh - 1 + kk) * s, (ow - 1 + kk) * s
  x = lax.pad(x, jnp.zeros((), x.dtype),
              ((0, 0, 0), (pl, hn - hh - pl, 0), (ql, wn - ww - ql, 0), (0, 0, 0)))
  ci, co = w.shape[2], w.shape[3]
  wk = w.reshape(kk, s, kk, s, ci, co).transpose(0, 2, 1, 3, 4, 5).reshape(kk, kk, s * s * ci, co)
  return _plain_conv(_space_to_depth(x, s), wk, (1, 1), ((0, 0), (0, 0)))


def _plain_conv_transpose(h, w, stride, padding, in_hw):
  x_struct = jax.ShapeDtypeStruct((h.shape[0], *in_hw, w.shape[2]), h.dtype)
  adjoint = jax.linear_transpose(lambda x: _unstrided_conv(x, w, stride, padding), x_struct)
  return adjoint(h)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_transpose(h, w, stride, padding, in_hw):
  """The adjoint of conv(., w): maps [B, *out_hw, C_out] to [B, *in_hw, C_in]."""
  return _backward_data(h, w, stride, padding, in_hw)


def _conv_t_fwd(h, w, stride, padding, in_hw):
  return conv_transpose(h, w, stride, padding, in_hw), (h, w)


def _conv_t_bwd(stride, padding, in_hw, res, g):
  h, w = res
  # <g, conv_t(h; W)> = <conv(g; W), h>: both cotangents are ordinary-conv computations.
  return conv(g, w, stride, padding), weight_grad(g, h, tuple(w.shape), stride, padding)


conv_transpose.defvjp(_conv_t_fwd, _conv_t_bwd)


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
  """TF/Flax 'SAME' padding for one spatial dimension (symmetric for k4/s2 on even sizes,
  i.e. PyTorch's padding=1)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2

