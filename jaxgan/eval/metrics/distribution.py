"""Distances between the feature distributions of generated and real images.

fd   Fréchet distance of Gaussians fitted to the features (Heusel et al. 2017; FID with
     Inception features, here with the run's evaluation extractor)
kid  unbiased kernel inception distance, cubic polynomial kernel, 50 subsets of 1,000
     (Bińkowski et al. 2018)
pr   improved precision and recall, k = 3 (Kynkäänniemi et al. 2019)
dc   density and coverage, k = 5 (Naeem et al. 2020)

The math is in jaxgan/eval/stats.py (float64 NumPy, checked against closed forms).
"""
from __future__ import annotations

from jaxgan.eval import stats as M
from jaxgan.eval.metrics import METRICS, Inputs, Metric


def fd(inp: Inputs):
  g = M.GaussianStats(inp.features.shape[1]).update(inp.features)
  return {"fd": M.frechet_distance(g.mean, g.cov, inp.real.mean, inp.real.cov)}


def kid(inp: Inputs):
  mean, std = M.kid(inp.real.features, inp.features, num_subsets=50, subset_size=1000,
                    seed=inp.seed)
  return {"kid_mean": mean, "kid_std": std}


def _paired(inp: Inputs, cap: int = 5000):
  n = min(len(inp.real.features), len(inp.features), cap)
  return inp.real.features[:n], inp.features[:n]


def precision_recall(inp: Inputs):
  p, r = M.precision_recall(*_paired(inp), k=3)
  return {"precision": p, "recall": r}


def density_coverage(inp: Inputs):
  d, c = M.density_coverage(*_paired(inp), k=5)
  return {"density": d, "coverage": c}


METRICS.register("fd", Metric(fd, minimize=("fd",)))
METRICS.register("kid", Metric(kid, minimize=("kid_mean",)))
METRICS.register("pr", Metric(precision_recall))
METRICS.register("dc", Metric(density_coverage))
