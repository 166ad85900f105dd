"""ADA's adaptive augmentation probability p, as part of the train state.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", sec. 3:
the overfitting heuristic r_t = E[sign(D(x_real))] over the real images D saw since the
last adjustment; every `ada_interval` steps p moves by

  sign(r_t - target) * (images seen in those steps) / (ada_kimg * 1000)

so that it can go from 0 to 1 in `ada_kimg` thousand images (defaults as the reference
implementation: target 0.6, every 4 steps, 500 kimg). A D that is confident on its
training images (r_t above the target) gets stronger augmentation.

Where we differ from the reference, on purpose: p is clipped to [0, 1] (the reference only
clips at 0). Above 1 the augmentation does not get stronger, but a p of, say, 1.3 would
first have to come back down to 1 before a falling r_t has any effect.

Everything lives in `TrainState.augment` ({"p", "signs", "count", "rt"}): checkpointed,
resumed exactly, per member in a population, and updated inside the compiled step, so a
run interrupted between adjustments resumes with the same partial sums.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax.numpy as jnp

from jaxgan.core import augment


class Schedule(NamedTuple):
  target: float       # r_t target; 0 = p fixed at its initial value
  interval: int       # steps between adjustments
  kimg: float         # thousands of images for p to move by 1
  images_per_step: int


def schedule_of(config) -> Optional[Schedule]:
  if not augment.uses_p(config.augment.policy):
    return None
  a = config.augment
  return Schedule(float(a.ada_target), int(a.ada_interval), float(a.ada_kimg),
                  int(config.data.batch_size) * int(config.train.n_critic))


def init_state(config) -> Optional[dict]:
  """The initial {p, signs, count, rt}, or None when the policy has no adaptive part."""
  if not augment.uses_p(config.augment.policy):
    return None
  f = lambda v: jnp.asarray(v, jnp.float32)
  return {"p": f(config.augment.p), "signs": f(0.0), "count": f(0.0), "rt": f(0.0)}


def update(state: dict, real_sign: jnp.ndarray, step, sched: Schedule) -> dict:
  """The state after the step numbered `step` (0-based), in which D's outputs on its real
  images had mean sign `real_sign`: accumulate, and every `interval` steps adjust p."""
  signs, count = state["signs"] + real_sign, state["count"] + 1.0
  if sched.target <= 0:
    return {**state, "signs": signs, "count": count, "rt": signs / count}
  due = (step + 1) % sched.interval == 0
  rt = signs / count
  adjust = (jnp.sign(rt - sched.target) * count * sched.images_per_step
            / (sched.kimg * 1000.0))
  p = jnp.where(due, jnp.clip(state["p"] + adjust, 0.0, 1.0), state["p"])
  zero = jnp.zeros_like(signs)
  return {"p": p.astype(jnp.float32),
          "signs": jnp.where(due, zero, signs), "count": jnp.where(due, zero, count),
          "rt": jnp.where(due, rt, state["rt"])}
