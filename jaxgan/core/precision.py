"""Mixed precision (`config.train.dtype`): G and D compute in bfloat16 (or float16) while
parameters, optimizer states, EMA, BatchNorm statistics, losses, regularizer values and
penalty norms stay float32.

The recipe of mixed-precision training (Micikevicius et al. 2018, "Mixed Precision
Training"; Kalamkar et al. 2019 for bfloat16): keep a float32 master copy of the weights,
cast it to the low precision for each forward pass, and let the gradient flow back
through the cast, so the update is accumulated in float32. bfloat16 has float32's
exponent range, so no loss scaling is needed (float16 would need it: it is accepted for
experiments, but bfloat16 is the setting to use). Each network's inputs and parameters
are cast on the way in (`GAN.generate`, `GAN.discriminate`) and its outputs (images,
logits) cast back to float32 on the way out: the losses, R1/R2 and the gradient penalty's
norm ||grad D(x)|| are then float32 computations on float32 values, and the gradient a
penalty takes w.r.t. a float32 input is float32 (the transpose of the cast).

Variables that are not parameters (BatchNorm running statistics, spectral-norm vectors)
are float32 in the state; a module may compute their update in low precision, and it is
cast back (`like`), so the state's dtypes never change.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def dtype_of(config) -> Any:
  return DTYPES[config.train.dtype]


def cast(tree, dtype):
  """The floating-point leaves of `tree` in `dtype` (others unchanged); a no-op for f32."""
  if dtype == jnp.float32:
    return tree
  return jax.tree.map(lambda x: x.astype(dtype) if _floating(x) else x, tree)


def to_float32(tree):
  """Floating-point leaves back in float32 (None stays None)."""
  return jax.tree.map(lambda x: x.astype(jnp.float32) if _floating(x) else x, tree)


def like(tree, reference):
  """`tree` with each leaf in the dtype of `reference`'s leaf (the stored state's)."""
  return jax.tree.map(lambda x, r: x.astype(r.dtype) if hasattr(r, "dtype") else x,
                      tree, reference)


def _floating(x) -> bool:
  return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
