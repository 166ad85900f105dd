"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=8 by test_sharding.py.

Compares the sharded train step on 8 (and 2) devices with the 1-device step, for a
conditional DCGAN-style WGAN-GP (BatchNorm in G over the global batch) and prints JSON.
"""
import json
import sys

import jax
import numpy as np

from configs import wgan_gp
from jaxgan.base import sharding
from jaxgan.core import state as state_lib, train_step as ts


def run(n_devices, config, batch_np):
  mesh = sharding.make_mesh(n_devices)
  gan, state = state_lib.create(config, (28, 28, 1), 10)
  repl = sharding.replicated(mesh)
  state = jax.device_put(state, repl)
  step = jax.jit(ts.make_train_step(gan, config), in_shardings=(repl, sharding.batch_sharding(mesh)),
                 out_shardings=(repl, repl))
  for s in range(2):
    state, m = step(state, sharding.put_batch(batch_np, mesh))
  return state, m


def main():
  c = wgan_gp.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  c.model.latent_dim = 8
  c.model.conditioning = "concat"
  c.data.batch_size, c.train.n_critic = 16, 2
  rs = np.random.RandomState(0)
  batch = {"images": rs.randint(0, 256, (2, 16, 28, 28, 1)).astype(np.uint8),
           "labels": rs.randint(0, 10, (2, 16)).astype(np.int32)}
  ref, m_ref = run(1, c, batch)
  out = {"devices": jax.device_count()}
  for n in (2, 8):
    st, m = run(n, c, batch)
    diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
             for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(st))]
    out[str(n)] = {"max_abs_diff": max(diffs),
                   "c_loss": float(m["c_loss"]), "c_loss_1": float(m_ref["c_loss"]),
                   "batch_devices": len(sharding.put_batch(batch, sharding.make_mesh(n))
                                        ["images"].sharding.device_set)}
  print(json.dumps(out))


if __name__ == "__main__":
  sys.exit(main())
