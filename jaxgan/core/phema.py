"""Power-function EMA profiles and their post-hoc reconstruction (EDM2's post-hoc EMA).

Karras et al., "Analyzing and Improving the Training Dynamics of Diffusion Models"
(CVPR 2024), Sec. 3 and App. C; the facts below were read from NVlabs/edm2 at commit
4bf8162f601bcc09472ce8a32dd0cbe8889dc8fc (training/phema.py, reconstruct_phema.py), and
R3GAN2 (IFeelBloated/R3GAN2) trains with the same two profiles.

Why: the EMA length that gives the best samples differs by model, data and training
length, and a fixed `ema_decay` must be chosen before training. A power-function EMA
averages the weights with profile p_t(tau) = (gamma+1) tau^gamma / t^(gamma+1) on
[0, t]: its width relative to t, sigma_rel = sqrt((gamma+1) / ((gamma+2)^2 (gamma+3))),
stays fixed as training goes on. Keeping two such profiles and saving them now and then
lets any other sigma_rel be reconstructed afterwards, as the least-squares combination of
the saved snapshots whose profile is closest to the wanted one.

During training (the train step): after G's update k (k = 1, 2, ...; t = k batches of
images), each profile is theta <- beta theta + (1 - beta) x with
beta = (1 - 1/k)^(gamma+1); at k = 1, beta = 0 and the EMA is G's weights after its first
update (the initial weights get weight 0). EDM2 writes t in images, t_delta = batch size:
with a constant batch the ratio is 1/k, the same numbers.

After training (float64, on the host): gamma from sigma_rel is the largest real root of
gamma^3 + 7 gamma^2 + (16 - s^-2) gamma + (12 - s^-2) = 0, solved here in closed form
(three real roots, trigonometric formula) where EDM2 calls numpy.roots; the snapshot
profiles' Gram matrix A and their inner products B with the wanted profile give
coefficients X = A^-1 B, each column then scaled to sum 1 (EDM2 solves exactly with
np.linalg.solve, no regularisation; so do we).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

MAX_SIGMA_REL = float(np.sqrt(1.0 / 12.0))   # gamma = 0: a uniform average over [0, t]


def sigma_rel_to_gamma(sigma_rel):
  """The power-function exponent whose profile has relative width `sigma_rel` (float64;
  a scalar or an array). 0 < sigma_rel < sqrt(1/12)."""
  s = np.asarray(sigma_rel, np.float64)
  if np.any(s <= 0) or np.any(s >= MAX_SIGMA_REL):
    raise ValueError(f"sigma_rel={sigma_rel!r}: each must be in (0, {MAX_SIGMA_REL:.4f}).")
  k = s ** -2.0
  # depressed cubic y^3 + p y + q = 0 with gamma = y - 7/3
  p = -1.0 / 3.0 - k
  q = 2.0 / 27.0 + 4.0 * k / 3.0
  arg = np.clip(3.0 * q / (2.0 * p) * np.sqrt(-3.0 / p), -1.0, 1.0)
  gamma = 2.0 * np.sqrt(-p / 3.0) * np.cos(np.arccos(arg) / 3.0) - 7.0 / 3.0
  return float(gamma) if gamma.ndim == 0 else gamma


def gamma_to_sigma_rel(gamma):
  g = np.asarray(gamma, np.float64)
  out = np.sqrt((g + 1.0) / ((g + 2.0) ** 2 * (g + 3.0)))
  return float(out) if out.ndim == 0 else out


def profile_dot(t_a, gamma_a, t_b, gamma_b):
  """<p_a, p_b> = integral of p_{t_a,gamma_a} p_{t_b,gamma_b} over [0, min(t_a, t_b)]
  = (ga+1)(gb+1)/(ga+gb+1) min^(ga+gb+1) / (t_a^(ga+1) t_b^(gb+1)), written with the ratio
  of the times so that large t and gamma do not overflow (broadcasts; float64)."""
  t_a, g_a, t_b, g_b = (np.asarray(v, np.float64) for v in (t_a, gamma_a, t_b, gamma_b))
  ratio = t_a / t_b
  exponent = np.where(t_a < t_b, g_b, -g_a)
  num = (g_a + 1.0) * (g_b + 1.0) * ratio ** exponent
  return num / ((g_a + g_b + 1.0) * np.maximum(t_a, t_b))


def solve_coefficients(in_t: Sequence[float], in_sigma_rel: Sequence[float], out_t: float,
                       out_sigma_rel: Sequence[float]) -> np.ndarray:
  """X[i, r]: the weight of snapshot i (time in_t[i], profile in_sigma_rel[i]) in the
  reconstruction of profile out_sigma_rel[r] at time out_t; each column sums to 1."""
  in_t = np.asarray(in_t, np.float64)
  if np.any(in_t <= 0):
    raise ValueError("snapshot times must be > 0 (EDM2 drops the one of the initial weights)")
  in_g = sigma_rel_to_gamma(np.asarray(in_sigma_rel, np.float64))
  out_g = sigma_rel_to_gamma(np.atleast_1d(np.asarray(out_sigma_rel, np.float64)))
  a = profile_dot(in_t[:, None], in_g[:, None], in_t[None, :], in_g[None, :])
  b = profile_dot(in_t[:, None], in_g[:, None], float(out_t), out_g[None, :])
  x = np.linalg.solve(a, b)
  return x / x.sum(axis=0, keepdims=True)


def combine(coefficients: Sequence[float], trees: Sequence):
  """sum_i c_i tree_i, accumulated in float64 on the host, returned as float32 arrays."""
  out = None
  for c, tree in zip(coefficients, trees):
    term = jax.tree.map(lambda v, c=c: np.asarray(v, np.float64) * float(c), tree)
    out = term if out is None else jax.tree.map(np.add, out, term)
  return jax.tree.map(lambda v: v.astype(np.float32), out)


def betas(step_after, gammas) -> jax.Array:
  """beta_i = (1 - 1/k)^(gamma_i + 1) for G's update k = `step_after` (>= 1), in float32 as
  exp((gamma+1) log1p(-1/k)), which keeps its precision for large k; 0 at k = 1."""
  k = jnp.asarray(step_after, jnp.float32)
  g = jnp.asarray(gammas, jnp.float32)
  return jnp.where(k <= 1.0, 0.0, jnp.exp((g + 1.0) * jnp.log1p(-1.0 / jnp.maximum(k, 1.0))))


def update(profiles, params, step_after, gammas):
  """Each profile after G's update k = step_after: beta_i profile_i + (1 - beta_i) params."""
  b = betas(step_after, gammas)
  return tuple(jax.tree.map(lambda e, p, bi=b[i]: bi * e + (1.0 - bi) * p.astype(e.dtype),
                            prof, params)
               for i, prof in enumerate(profiles))
