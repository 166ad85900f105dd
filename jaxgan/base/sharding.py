"""Data parallelism with `jax.jit` and explicit shardings over a ("data",) mesh.

The train state is replicated; the global batch is split along its batch axis over every
device of every process. The same code runs on 1 CPU, 8 GPUs or a TPU slice: XLA inserts
the gradient all-reduce and computes BatchNorm statistics over the global batch.
"""
from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxgan.base.errors import UserError


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D ("data",) mesh over the first `num_devices` devices (0: all of them).

  The axis is `Auto`: XLA's sharding propagation places the intermediates, so model code
  needs no sharding annotations (mixing the replicated z with the sharded labels, say).
  """
  n = num_devices or jax.device_count()
  if n > jax.device_count():
    raise UserError(f"config.num_devices={n} but only {jax.device_count()} devices exist.")
  return jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, batch_axis: int = 1) -> NamedSharding:
  """Shards axis `batch_axis` (axis 1 of the [n_critic, B, ...] step batches)."""
  return NamedSharding(mesh, P(*([None] * batch_axis), "data"))


def check_batch_size(batch_size: int, mesh) -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise UserError(f"config.data.batch_size={batch_size} must be divisible by the "
                     f"{n} devices of the mesh.")


def put_batch(batch: dict, mesh, batch_axis: int = 1) -> dict:
  """Places this process's part of the global batch on the mesh.

  One process: `batch` is the whole global batch. Several: each passes its local part
  (B / process_count examples along `batch_axis`), and the global array is assembled
  from the parts with jax.make_array_from_process_local_data."""
  sharding = batch_sharding(mesh, batch_axis)
  if jax.process_count() == 1:
    return {k: jax.device_put(v, sharding) for k, v in batch.items()}
  out = {}
  for k, v in batch.items():
    shape = list(v.shape)
    shape[batch_axis] *= jax.process_count()
    out[k] = jax.make_array_from_process_local_data(sharding, v, tuple(shape))
  return out
