"""Fully connected GAN (Goodfellow et al. 2014), as in the MNIST / Fashion-MNIST tutorials.

Images are flattened to H*W*C, the generator ends in tanh (data in [-1, 1]) and the
discriminator returns one logit per example (the sigmoid lives in the loss, where it is
numerically stable). Conditioning by concatenating the one-hot label (Mirza & Osindero
2014) to z and to the flattened image.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgan.models import layers as L


class MLPGenerator(nnx.Module):
  def __init__(self, latent_dim: int, widths: Sequence[int], image_shape: Sequence[int], *,
               act: str = "relu", norm: str = "none", num_classes: int = 0,
               init: str = "pytorch", rngs: nnx.Rngs):
    self.latent_dim = latent_dim
    self.image_shape = tuple(image_shape)
    self.num_classes = num_classes
    self.act = L.activation(act)
    dims = [latent_dim + max(num_classes, 0), *widths]
    self.hidden = nnx.List([nnx.Linear(a, b, use_bias=norm != "batch", rngs=rngs,
                                       **L.init_kwargs(init, a))
                            for a, b in zip(dims[:-1], dims[1:])])
    self.norms = nnx.List([L.Norm(norm, b, spatial=False, rngs=rngs) for b in widths])
    self.out = nnx.Linear(dims[-1], int(np.prod(image_shape)), rngs=rngs,
                          **L.init_kwargs(init, dims[-1]))

  def __call__(self, z, labels=None, *, train: bool):
    L.check_labels(labels, self.num_classes, "generator")
    y = L.one_hot(labels, self.num_classes)
    h = z if y is None else jnp.concatenate([z, y], axis=-1)
    for lin, norm in zip(self.hidden, self.norms):
      h = self.act(norm(lin(h), train=train))
    x = jnp.tanh(self.out(h))
    return x.reshape((z.shape[0], *self.image_shape))


class MLPDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], widths: Sequence[int], *,
               act: str = "leaky_relu", dropout: float = 0.0, spectral_norm: bool = False,
               num_classes: int = 0, init: str = "pytorch", rngs: nnx.Rngs):
    self.num_classes = num_classes
    self.act = L.activation(act)
    dims = [int(np.prod(image_shape)) + max(num_classes, 0), *widths]
    self.hidden = nnx.List([
        L.maybe_spectral(nnx.Linear(a, b, rngs=rngs, **L.init_kwargs(init, a)),
                         spectral_norm, rngs)
        for a, b in zip(dims[:-1], dims[1:])])
    self.dropout = nnx.Dropout(dropout) if dropout > 0 else None
    self.out = L.maybe_spectral(
        nnx.Linear(dims[-1], 1, rngs=rngs, **L.init_kwargs(init, dims[-1])), spectral_norm, rngs)

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    L.check_labels(labels, self.num_classes, "discriminator")
    h = x.reshape((x.shape[0], -1))
    y = L.one_hot(labels, self.num_classes)
    if y is not None:
      h = jnp.concatenate([h, y.astype(h.dtype)], axis=-1)
    for i, lin in enumerate(self.hidden):
      h = self.act(L.call_layer(lin, h, train=train))
      if self.dropout is not None:
        h = self.dropout(h, deterministic=not train,
                         rngs=None if rngs is None else jax.random.fold_in(rngs, i))
    return L.call_layer(self.out, h, train=train)[:, 0]
