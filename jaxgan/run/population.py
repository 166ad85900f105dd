"""What is specific to populations: which fields may vary, stacking, the population step.

Trials that differ only in the seed and in scalar hyperparameters (the fields the config
schema marks `population=True`) have identical shapes, so their states stack along a
leading member axis and one compiled step trains all of them on the same devices. The
optimizer hyperparameters live in the optimizer states (optax.inject_hyperparams) and the
others in `TrainState.hparams`, so every member really uses its own values. One data
pipeline holds the images; each member draws its own order from its own seed.

The training loop is the one of single runs (jaxgan/run/train.py, `trials=`): the population
is checkpointed and resumed as one state (workdir/population/), and every member writes
its metrics, grids, evaluations and checkpoints (best one included) into
workdir/<trial name>/ as an ordinary run, so it can be sampled and evaluated as if it had
been trained alone.
"""
from __future__ import annotations

from typing import List

import jax
import jax.numpy as jnp

from jaxgan.config import population_fields
from jaxgan.base.errors import UserError
from jaxgan.run.trials import Trial, apply, trial_name  # noqa: F401  (used through this module)


def check(trials: List[Trial]) -> None:
  allowed = population_fields()
  bad = sorted({k for t in trials for k in t} - set(allowed))
  if bad:
    raise UserError(
        f"--population trains trials that differ only in the seed and scalar "
        f"hyperparameters ({', '.join(allowed)}); these fields would change "
        f"the program: {', '.join(bad)}. Run the sweep without --population.")
  emas = {float(t.get("ema_decay", -1)) > 0 for t in trials if "ema_decay" in t}
  if len(emas) > 1:
    raise UserError("--population: ema_decay must be > 0 for all members or for none.")


def stack(trees):
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def unstack(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


POPULATION_MODES = ("vmap", "unroll")


def population_step(step_fn, members: int, mode: str):
  """One train step over a stacked population of `members` states.

  "vmap" batches the members into one program: fastest where the step is made of matmuls
  (MLPs) and on accelerators. Vmapped convolutions with per-member kernels become grouped
  convolutions, which XLA:CPU runs slowly, so "unroll" instead traces the step once per
  member inside the same compiled program (compile time grows with the population; XLA may
  run independent members concurrently). Both give the same values."""
  if mode == "vmap":
    return jax.vmap(step_fn)
  if mode != "unroll":
    raise UserError(f"Unknown train.population_mode {mode!r}; valid: "
                     f"{', '.join(POPULATION_MODES)}.")

  def unrolled(states, batches):
    outs = [step_fn(unstack(states, i), unstack(batches, i)) for i in range(members)]
    return stack([o[0] for o in outs]), stack([o[1] for o in outs])
  return unrolled
