"""Deterministic batches: batch number b is a pure function of (seed, b).

The order within epoch e is a permutation drawn from (seed, e) alone, so any batch can be
produced without replaying the batches before it; resuming at step s continues the exact
stream an uninterrupted run would have seen. A train step with n_critic critic updates
consumes real batches s*n_critic ... s*n_critic + n_critic - 1 (a fresh batch for each
critic update). The last partial batch of an epoch is dropped.
"""
from __future__ import annotations

import numpy as np

from jaxgan.base import rng
from jaxgan.data.sources import ImageData
from jaxgan.base.errors import UserError


class EpochSampler:
  """Indices of global batch b for a dataset of `num_examples` examples."""

  def __init__(self, num_examples: int, batch_size: int, seed: int, stream: int = 0):
    if batch_size < 1 or num_examples < batch_size:
      raise UserError(f"config.data.batch_size={batch_size}: the data has only {num_examples} "
                      "examples (per process); lower the batch size or use more data.")
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.stream = stream
    self.batches_per_epoch = num_examples // batch_size
    self._cache = (None, None)

  def permutation(self, epoch: int) -> np.ndarray:
    if self._cache[0] != epoch:
      gen = np.random.default_rng([self.seed, rng.stream_id("data_order"), epoch]
                                  + ([self.stream] if self.stream else []))
      self._cache = (epoch, gen.permutation(self.num_examples))
    return self._cache[1]

  def indices(self, b: int) -> np.ndarray:
    epoch, pos = divmod(int(b), self.batches_per_epoch)
    return self.permutation(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]


class Batches:
  """The real batches the train step consumes, as host numpy arrays.

  `for_step(s)` returns {"images": uint8[k, B, H, W, C], "labels": int32[k, B]} with the
  k = n_critic batches that generator step s uses (a latent dataset: float32 means as
  "images" and their "stds"). With several processes, each holds its
  own data shard and draws its B / process_count examples of every global batch from it,
  in an order of its own (seed, epoch, process); one process reproduces the
  single-process stream exactly.
  """

  def __init__(self, data: ImageData, batch_size: int, n_critic: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    if batch_size % process_count:
      raise UserError(f"config.data.batch_size={batch_size} must be divisible by the "
                       f"{process_count} processes.")
    self.data, self.n_critic = data, n_critic
    stream = process_index + 1 if process_count > 1 else 0
    self.sampler = EpochSampler(len(data.images), batch_size // process_count, seed, stream)

  def batch(self, b: int) -> dict:
    idx = self.sampler.indices(b)
    out = {"images": self.data.images[idx]}
    if self.data.labels is not None:
      out["labels"] = self.data.labels[idx]
    if self.data.stds is not None:   # a latent dataset: the step draws mean + std * eps
      out["stds"] = self.data.stds[idx]
    return out

  def for_step(self, step: int) -> dict:
    parts = [self.batch(step * self.n_critic + i) for i in range(self.n_critic)]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

  def step_indices(self, step: int) -> np.ndarray:
    """int32 [k, B]: the rows of `data` that for_step(step) gathers (config.data.on_device
    gathers them on the device instead: jaxgan/data/device.py)."""
    return np.stack([self.sampler.indices(step * self.n_critic + i)
                     for i in range(self.n_critic)]).astype(np.int32)

  def epoch_of_step(self, step: int) -> float:
    return step * self.n_critic / self.sampler.batches_per_epoch
