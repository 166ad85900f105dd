"""Adversarial losses as pure functions of discriminator logits.

Every loss is a pair of functions on the same interface, registered by name:

  d_terms(real_logits, fake_logits, real_target, fake_target) -> (real_term, fake_term)
  g_loss(fake_logits, real_logits) -> scalar

`real_target` / `fake_target` are per-example target arrays (1 and 0 unless label
smoothing, noise or flipping is on; see `label_targets`); losses that have no notion of
targets (hinge, wgan) ignore them and refuse label tricks at start-up. The discriminator
loss is real_term + fake_term (or their mean with `config.d_loss_average`).
Sigmoid cross-entropies are written with softplus, so they stay finite for any logit.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import optax

from jaxgan.base.registry import Registry

Array = jax.Array


class Loss(NamedTuple):
  d_terms: Callable[[Array, Array, Array, Array], Tuple[Array, Array]]
  g_loss: Callable[[Array, Array], Array]
  uses_targets: bool = True   # label smoothing / noise / flipping apply
  probabilistic: bool = True  # logits are log-odds: D(x) = sigmoid(logit) is meaningful
  critic: bool = False        # an unbounded critic (metrics are named c_* not d_*)
  needs_real_in_g: bool = False
  threshold: float = 0.0      # D calls an example real when its logit is above this
  adv_name: str = "adv"       # metric name of D's adversarial term: {d,c}_{adv_name}_loss


LOSSES: Registry[Loss] = Registry("loss", "config.loss")


def bce_with_logits(logits: Array, targets: Array) -> Array:
  """Element-wise binary cross-entropy -[t log s(l) + (1-t) log(1-s(l))], stable for any
  logit; targets outside [0, 1] (label noise) keep the same linear form."""
  return optax.sigmoid_binary_cross_entropy(logits, targets)


def _bce_d_terms(real, fake, t_real, t_fake):
  return jnp.mean(bce_with_logits(real, t_real)), jnp.mean(bce_with_logits(fake, t_fake))


# Goodfellow et al. 2014: min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]. For a fixed G the
# optimal D is p_data / (p_data + p_g); the generator then minimises 2 JSD - log 4.
LOSSES.register("minimax", Loss(
    d_terms=_bce_d_terms,
    g_loss=lambda fake, real: jnp.mean(-jax.nn.softplus(fake)),  # E[log(1 - D(G(z)))]
))

# The same D; G maximises log D(G(z)) instead, which does not saturate when D wins early.
LOSSES.register("non_saturating", Loss(
    d_terms=_bce_d_terms,
    g_loss=lambda fake, real: jnp.mean(jax.nn.softplus(-fake)),  # E[-log D(G(z))]
))

# Mao et al. 2017, a-b-c = 0-1-1 coding: targets play the role of a and b.
LOSSES.register("lsgan", Loss(
    d_terms=lambda real, fake, t_real, t_fake: (0.5 * jnp.mean((real - t_real) ** 2),
                                                0.5 * jnp.mean((fake - t_fake) ** 2)),
    g_loss=lambda fake, real: 0.5 * jnp.mean((fake - 1.0) ** 2),
    probabilistic=False, threshold=0.5,  # targets 0 and 1: the midpoint decides
))

# Lim & Ye 2017; Miyato et al. 2018.
LOSSES.register("hinge", Loss(
    d_terms=lambda real, fake, t_real, t_fake: (jnp.mean(jax.nn.relu(1.0 - real)),
                                                jnp.mean(jax.nn.relu(1.0 + fake))),
    g_loss=lambda fake, real: -jnp.mean(fake),
    uses_targets=False, probabilistic=False,
))

# Arjovsky et al. 2017: critic loss E[D(G(z))] - E[D(x)], generator loss -E[D(G(z))].
LOSSES.register("wgan", Loss(
    d_terms=lambda real, fake, t_real, t_fake: (-jnp.mean(real), jnp.mean(fake)),
    g_loss=lambda fake, real: -jnp.mean(fake),
    uses_targets=False, probabilistic=False, critic=True, adv_name="wass",
))


def _ragan_d(real, fake, t_real, t_fake):
  return (jnp.mean(bce_with_logits(real - jnp.mean(fake), t_real)),
          jnp.mean(bce_with_logits(fake - jnp.mean(real), t_fake)))


def _ragan_g(fake, real):
  real = jax.lax.stop_gradient(real)
  return (jnp.mean(bce_with_logits(fake - jnp.mean(real), jnp.ones_like(fake)))
          + jnp.mean(bce_with_logits(real - jnp.mean(fake), jnp.zeros_like(real))))


# Jolicoeur-Martineau 2019, relativistic average standard GAN.
LOSSES.register("ragan", Loss(d_terms=_ragan_d, g_loss=_ragan_g, probabilistic=False,
                              needs_real_in_g=True))


def _rpgan_d(real, fake, t_real, t_fake):
  del t_real, t_fake
  return jnp.mean(jax.nn.softplus(fake - real)), jnp.zeros((), real.dtype)


def _rpgan_g(fake, real):
  return jnp.mean(jax.nn.softplus(jax.lax.stop_gradient(real) - fake))


# Relativistic pairing GAN (Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al.
# 2024): each generated example is paired with the real example at its batch index,
# D minimises E[softplus(D(G(z)) - D(x))] = E[-log sigmoid(D(x) - D(G(z)))], G the same
# with the roles swapped. The whole D loss is reported as the real term (the pair cannot
# be split); R3GAN adds R1 and R2 (`regularizers`) to make it well-posed.
LOSSES.register("rpgan", Loss(d_terms=_rpgan_d, g_loss=_rpgan_g, uses_targets=False,
                              probabilistic=False, needs_real_in_g=True))


def label_targets(key: Array, batch: int, *, smoothing: float = 0.0, noise: float = 0.0,
                  flip: float = 0.0) -> Tuple[Array, Array]:
  """Per-example targets for the real and fake discriminator terms.

  smoothing: one-sided label smoothing, real target 1 - s (Salimans et al. 2016).
  noise: real 1 + noise * U(0,1), fake 0 - noise * U(0,1), as in the DCGAN/LEGO tutorial.
  flip: probability that an example's real/fake targets are swapped.

  The three may be traced arrays (one value per member of a population); with all three at
  0 the targets are exactly 1 and 0.
  """
  t_real = jnp.full((batch,), 1.0, jnp.float32) - smoothing
  t_fake = jnp.zeros((batch,), jnp.float32)
  k_real, k_fake, k_flip = jax.random.split(key, 3)
  t_real = t_real + noise * jax.random.uniform(k_real, (batch,))
  t_fake = t_fake - noise * jax.random.uniform(k_fake, (batch,))
  swap = jax.random.uniform(k_flip, (batch,)) < flip
  t_real, t_fake = jnp.where(swap, t_fake, t_real), jnp.where(swap, t_real, t_fake)
  return t_real, t_fake
