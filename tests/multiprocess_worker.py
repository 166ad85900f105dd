"""One process of the two-process test (tests/test_multiprocess.py): trains a tiny GAN
with jax.distributed over 127.0.0.1 (CPU collectives through gloo) and prints a digest
of its final parameters and its data shard."""
import hashlib
import json
import sys

import jax


def main(port: int, pid: int, workdir: str):
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                             process_id=pid)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxgan import data as data_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.run import train  # pylint: disable=g-import-not-at-top
  from tests.conftest import tiny_config  # pylint: disable=g-import-not-at-top
  c = tiny_config(**{"data.max_examples": 0, "train.steps": 4, "train.checkpoint_every": 2})
  shard = data_lib.load(c.data, jax.process_index(), jax.process_count())
  state = train.train_and_evaluate(c, workdir)
  leaves = [np.asarray(x) for x in jax.tree.leaves((state.g.params, state.d.params))]
  digest = hashlib.sha256(b"".join(x.tobytes() for x in leaves)).hexdigest()
  print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                    "devices": jax.device_count(), "step": int(state.step),
                    "digest": digest, "finite": bool(all(np.isfinite(x).all() for x in leaves)),
                    "shard_first_label_sum": int(shard.labels.sum()),
                    "shard_size": len(shard.images)}))


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
