"""A dataset held on the device (config.data.on_device).

The decoded uint8 images (and int labels) are put on the run's mesh once, replicated on
every device; each call then sends only the int32 indices of its batches
(`Batches.step_indices`: [n_critic, B], [K, n_critic, B] for K steps per call, a leading
population axis in a population), drawn from the same `EpochSampler` as the host path,
and the batch is gathered on the device (`jnp.take`) with the sharding `put_batch` gives
the host batch. The train step receives the same uint8 values either way, so training is
bit-identical to the host path (tests/test_on_device.py).
"""
from __future__ import annotations

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.base import sharding
from jaxgan.data.choose import _human
from jaxgan.data.sources import ImageData
from jaxgan.base.errors import UserError


def check(data, process_count: int = 1) -> None:
  """The one-line refusal where config.data.on_device=True cannot apply."""
  fix = "set config.data.on_device=False"
  if process_count > 1:
    raise UserError(f"config.data.on_device=True holds a single process's dataset; this run "
                    f"has {process_count} processes: {fix}.")
  if not isinstance(data, ImageData):
    raise UserError("config.data.on_device=True needs the dataset decoded in memory, but it "
                    f"is streamed from disk: {fix}, or set config.data.source='memory' (or "
                    "raise config.data.max_host_memory) if it fits.")
  if data.latent is not None:
    raise UserError(f"config.data.on_device=True holds uint8 images; {data.name} is a latent "
                    f"dataset (float32 means and stds): {fix}.")


class DeviceData:
  """The images and labels of `data` on `mesh`, and the on-device gather of batches."""

  def __init__(self, data: ImageData, mesh, say=print):
    self.mesh = mesh
    repl = sharding.replicated(mesh)
    host = {"images": data.images}
    if data.labels is not None:
      host["labels"] = data.labels
    size = sum(v.nbytes for v in host.values())
    try:
      self.arrays: Dict[str, jax.Array] = {k: jax.device_put(v, repl) for k, v in host.items()}
    except Exception as e:  # pylint: disable=broad-except  (out of device memory)
      if "RESOURCE_EXHAUSTED" not in str(e) and "out of memory" not in str(e).lower():
        raise
      raise UserError(f"config.data.on_device=True: {data.name}'s {len(data.images)} images "
                      f"({_human(size)}) do not fit in device memory; set "
                      "config.data.on_device=False.") from None
    say(f"Holding {data.name} on the device: {len(data.images)} images, {_human(size)} per "
        "device (config.data.on_device).")
    self._gather = {}

  def gather(self, indices: np.ndarray, batch_axis: int) -> Dict[str, jax.Array]:
    """{"images": uint8[*indices.shape, H, W, C], "labels": int32[*indices.shape]} of the
    int32 `indices`, sharded along `batch_axis` as sharding.put_batch shards a host batch."""
    fn: Optional[object] = self._gather.get(batch_axis)
    if fn is None:
      out = sharding.batch_sharding(self.mesh, batch_axis)
      fn = jax.jit(lambda arrays, idx: {k: jnp.take(v, idx, axis=0, mode="clip")
                                        for k, v in arrays.items()},
                   out_shardings=out)
      self._gather[batch_axis] = fn
    return fn(self.arrays, np.asarray(indices, np.int32))
