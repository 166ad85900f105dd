"""Writes tests/data/main_run and tests/data/main_run_step4_params.npz: a run directory
written by jaxgan at commit 1196f37 (main before issue 36 moved the modules into layers),
to test that runs written by that code still resume bit-exactly after the move.

The run is checkpointed at step 2; the .npz holds G's, EMA G's and D's parameters, ADA's state and the regularizer states of the
same run trained by that code to step 4 without interruption, keyed "g" / "ema" / "d" / "augment" / "reg" +
jax.tree_util.keystr(path). Run from the repository root at that commit:
  python tests/data/make_main_run.py tests/data/main_run
"""
import shutil
import sys

import jax
import numpy as np

sys.path.insert(0, ".")
from tests.conftest import tiny_config  # noqa: E402
from jaxgan import train  # noqa: E402


def config(steps):
  return tiny_config(**{
      "model.latent_dim": 4, "model.mlp.g_widths": (8,), "model.mlp.d_widths": (8,),
      "model.conditioning": "projection",
      "data.batch_size": 8, "data.max_examples": 64, "train.steps": steps,
      "train.log_every": 1, "train.sample_every": 0, "train.checkpoint_every": 2,
      "train.tensorboard": False, "ema_decay": 0.9,
      "regularizers": ({"name": "r1", "weight": 0.5, "every": 2, "side": "d"},),
      "augment.policy": "ada", "augment.p": 0.2, "augment.ada_interval": 1,
      "labels.smoothing": 0.1})


if __name__ == "__main__":
  out = sys.argv[1]
  shutil.rmtree(out, ignore_errors=True)
  shutil.rmtree(out + "_to4", ignore_errors=True)
  train.train_and_evaluate(config(2), out)
  full = train.train_and_evaluate(config(4), out + "_to4")
  arrays = {}
  for name, tree in (("g", full.g.params), ("ema", full.ema), ("d", full.d.params),
                     ("augment", full.augment), ("reg", full.reg)):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      arrays[name + jax.tree_util.keystr(path)] = np.asarray(leaf)
  np.savez(out + "_step4_params.npz", **arrays)
  shutil.rmtree(out + "_to4")
  print(len(arrays), "arrays, step", int(full.step))
