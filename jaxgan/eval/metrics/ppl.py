"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture",
sec. 4.2): how much the image changes for a small step along a latent path.

For pairs z0, z1 ~ N(0, I) and t ~ U(0, 1), the squared feature distance between
G(slerp(z0, z1, t)) and G(slerp(z0, z1, t + eps)), divided by eps^2 (eps = 1e-4, 'full'
sampling in Z); values outside the 1st-99th percentile are dropped before the mean, as in
the StyleGAN2-ADA implementation. A metric of the generator itself: it samples its own
latents through `inputs.gan`.

For a style-based G (StyleGAN2) the path is in W, as the paper's PPL_W: w0, w1 the mapped
z0, z1, linear interpolation between them (Karras et al. 2019, eq. 3), then synthesis.

Difference from the paper, on purpose: the distance is the squared L2 distance in the
run's evaluation extractor (fed float images, so an eps step is not lost to uint8
rounding), not LPIPS-VGG16, which cannot be downloaded offline; values rank generators of
one dataset and are not comparable with published PPL.
"""
from __future__ import annotations

import jax
import numpy as np

from jaxgan.eval import latent, sampling
from jaxgan.base import rng
from jaxgan.core import state as state_lib
from jaxgan.eval.metrics import METRICS, Inputs, Metric

EPSILON = 1e-4


def path_length_samples(inp: Inputs, num: int, batch: int = 250) -> np.ndarray:
  gan, st = inp.gan, inp.state
  gen = sampling.generator_fn(gan)
  params = state_lib.sampling_params(st)
  pair_slerp = jax.jit(jax.vmap(lambda a, b, t: latent.slerp(a, b, t[None])[0]))
  out = []
  for start in range(0, num, batch):
    k = jax.random.fold_in(rng.stream(inp.key, "ppl"), start)
    k0, k1, kt, kl = jax.random.split(k, 4)
    z0, z1 = gan.sample_latents(k0, batch), gan.sample_latents(k1, batch)
    t = jax.random.uniform(kt, (batch,))
    za, zb = pair_slerp(z0, z1, t), pair_slerp(z0, z1, t + EPSILON)
    labels = gan.sample_labels(kl, batch)
    if gan.style_based:
      ia, ib = _in_w(gan, params, st.g.stats, z0, z1, t, labels)
    else:
      ia, ib = gen(params, st.g.stats, za, labels), gen(params, st.g.stats, zb, labels)
    fa = inp.extractor.features_float(np.asarray(ia))
    fb = inp.extractor.features_float(np.asarray(ib))
    out.append(np.sum(np.square(fa - fb), axis=1) / EPSILON ** 2)
  return np.concatenate(out)[:num]


def _in_w(gan, params, stats, z0, z1, t, labels):
  """Images at lerp(w0, w1, t) and at t + EPSILON (the mapping's ws, then synthesis)."""
  map_ws, synthesize = latent.fns(gan)
  w0, w1 = map_ws(params, stats, z0, labels, 1.0), map_ws(params, stats, z1, labels, 1.0)
  at = lambda u: synthesize(params, stats, w0 + u[:, None, None] * (w1 - w0))
  return at(t), at(t + EPSILON)


def ppl(inp: Inputs):
  d = path_length_samples(inp, len(inp.images))
  lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
  return {"ppl": float(np.mean(d[(d >= lo) & (d <= hi)]))}


METRICS.register("ppl", Metric(ppl, needs="generator", minimize=("ppl",)))
