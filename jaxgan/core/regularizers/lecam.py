"""LeCam regularization of D (Tseng, Jiang, Liu, Yang & Yang 2021, "Regularizing Generative
Adversarial Networks under Limited Data", CVPR).

D's outputs on real images are pulled towards an exponential moving average of its outputs
on generated ones, and vice versa:

  R_LC = E_x[relu(D(x) - a_F)^2] + E_z[relu(a_R - D(G(z)))^2]

with a_R, a_F the moving averages of the batch means of D(x) and D(G(z)) (decay 0.99). The
paper motivates the term as bounding the LeCam divergence, which keeps D from drifting into
the over-confident regime that limited data invites.

Facts from the authors' implementation (google/lecam-gan, stylegan2/lecam_loss.py): the
hinge `relu` form (only the side of the anchor that the paper's squared distance would push
back is penalised), averages updated with the current batch *before* the term is computed,
and zero-debiased averages (TF's `assign_moving_average(zero_debias=True)`): with a biased
average b_t = d b_{t-1} + (1 - d) m_t from b_0 = 0, the anchor is b_t / (1 - d^t), so the
very first anchor is the first batch mean instead of 1% of it. The averages and the count t
live in the train state (`TrainState.reg["lecam"]`): saved, resumed exactly, per member in a
population. The default weight 0.3 is a starting point; the paper tunes it per dataset.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer


def updated_anchors(state, real_mean, fake_mean, decay):
  """The state after one batch, and the zero-debiased anchors (a_R, a_F) it gives."""
  t = state["count"] + 1.0
  real = decay * state["real"] + (1.0 - decay) * real_mean
  fake = decay * state["fake"] + (1.0 - decay) * fake_mean
  debias = 1.0 - decay ** t
  return {"real": real, "fake": fake, "count": t}, real / debias, fake / debias


def lecam(ctx: Context):
  real_logits = ctx.real_logits.reshape(-1)
  fake_logits = ctx.fake_logits.reshape(-1)
  state, a_real, a_fake = updated_anchors(
      ctx.state, jax.lax.stop_gradient(jnp.mean(real_logits)),
      jax.lax.stop_gradient(jnp.mean(fake_logits)), ctx.options["decay"])
  term = (jnp.mean(jnp.square(jax.nn.relu(real_logits - a_fake)))
          + jnp.mean(jnp.square(jax.nn.relu(a_real - fake_logits))))
  return term, jax.tree.map(jax.lax.stop_gradient, state)


REGULARIZERS.register("lecam", Regularizer(
    lecam, sides=("d",), weight=0.3, options={"decay": 0.99},
    init_state=lambda: {"real": jnp.zeros((), jnp.float32),
                        "fake": jnp.zeros((), jnp.float32),
                        "count": jnp.zeros((), jnp.float32)}))
