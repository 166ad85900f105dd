"""Writes tests/data/legacy_run: a run directory written by jaxgan before the config and
train-state layout of issue 16 (commit 602960e), to test that old runs still resume."""
import shutil, sys
sys.path.insert(0, ".")
from tests.conftest import tiny_config
from jaxgan import train
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
for steps, wd in ((2, out), (4, out + "_to4")):
  c = tiny_config(**{"model.latent_dim": 2, "model.g_widths": (4,), "model.d_widths": (4,),  # old layout
                     "data.batch_size": 8, "data.max_examples": 64, "train.steps": steps,
                     "train.log_every": 1, "train.sample_every": 0,
                     "train.checkpoint_every": 2, "train.tensorboard": False,
                     "penalty": "r1", "penalty_weight": 0.5, "labels.smoothing": 0.1})
  st = train.train_and_evaluate(c, wd)


# Then, with the same old code: the parameters of the run trained to step 4 (OUT_to4) went
# into tests/data/legacy_run_step4_params.npz, keyed "g" / "d" + jax.tree_util.keystr(path).
