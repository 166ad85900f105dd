"""Orthogonal regularization of a network's weights (Brock et al. 2019, BigGAN sec. 3.1):

  R(W) = sum over weight matrices W of || W W^T * (1 - I) ||_F^2

W is each convolution or linear kernel as a matrix with one row per output unit (a conv
kernel k x k x in x out gives out rows of k*k*in). Only the off-diagonal of the Gram
matrix is penalised, so the filters are pushed towards orthogonality without fixing their
norms, which keeps G amenable to the truncation trick. Embeddings and biases are left
alone (BigGAN-PyTorch excludes the shared class embedding the same way). The paper's
weight is 1e-4 on G (`{"name": "orthogonal", "side": "g", "weight": 1e-4}`).

BigGAN-PyTorch adds 2 (W W^T * (1 - I)) W x strength to the gradient directly, which is the
gradient of (strength / 2) R; this term is R itself, so its weight is the paper's beta.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer


def weight_matrices(params):
  """The kernels of `params` as (out, fan_in) matrices."""
  out = []
  for path, v in jax.tree_util.tree_leaves_with_path(params):
    names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
    if "kernel" in names and v.ndim >= 2:
      out.append(v.reshape(-1, v.shape[-1]).T)
  return out


def orthogonal_penalty(params) -> jax.Array:
  total = jnp.zeros((), jnp.float32)
  for w in weight_matrices(params):
    gram = w @ w.T
    total = total + jnp.sum(jnp.square(gram * (1.0 - jnp.eye(gram.shape[0], dtype=w.dtype))))
  return total


def orthogonal(ctx: Context):
  return orthogonal_penalty(ctx.params), ctx.state


REGULARIZERS.register("orthogonal", Regularizer(orthogonal, sides=("g", "d"), weight=1e-4))
