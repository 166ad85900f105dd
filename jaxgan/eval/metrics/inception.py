"""Paper-comparable metrics in the FID Inception's features (jaxgan/eval/inception_eval.py).

fid_inception  FID (Heusel et al. 2017) of the pool3 features against the reference
is             Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) || p(y)) of the
               1008-way softmax, over 10 equal consecutive splits (mean and std), as the
               original TensorFlow code computes it
kid_inception  KID (Binkowski et al. 2018), 100 subsets of 1,000
pr_inception   improved precision and recall (Kynkaanniemi et al. 2019), k = 3

They need `config.eval.inception_weights`; the protocol of the numbers (weights hash,
resize filter, reference) is returned as `inception_protocol`.
"""
from __future__ import annotations

import numpy as np

from jaxgan.eval import inception_eval as IE
from jaxgan.eval import stats as M
from jaxgan.eval.metrics import METRICS, Inputs, Metric


def inception_score(logits: np.ndarray, splits: int = IE.IS_SPLITS):
  """(mean, std) over `splits` consecutive parts of the samples' 1008-way logits."""
  logits = np.asarray(logits, np.float64)
  n = len(logits)
  if n < splits:
    raise ValueError(f"IS over {splits} splits needs at least {splits} samples, got {n}.")
  log_p = logits - logits.max(1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
  scores = []
  for i in range(splits):
    part = log_p[i * n // splits:(i + 1) * n // splits]
    top = part.max(0)   # log of the split's marginal p(y), stable where p(y|x) underflows
    log_py = top + np.log(np.exp(part - top).mean(0))
    scores.append(np.exp(np.mean(np.sum(np.exp(part) * (part - log_py), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


def fid_inception(inp: Inputs):
  f = inp.inception_outputs[0]
  g = M.GaussianStats(f.shape[1]).update(f)
  real = inp.inception.real
  return {"fid_inception": M.frechet_distance(g.mean, g.cov, real.mean, real.cov)}


def inception_is(inp: Inputs):
  mean, std = inception_score(inp.inception_outputs[1])
  return {"is_mean": mean, "is_std": std}


def kid_inception(inp: Inputs):
  mean, std = M.kid(inp.inception.real.features, inp.inception_outputs[0],
                    num_subsets=IE.KID_SUBSETS, subset_size=IE.KID_SUBSET_SIZE, seed=inp.seed)
  return {"kid_inception_mean": mean, "kid_inception_std": std}


def pr_inception(inp: Inputs, cap: int = 10000):
  real, fake = inp.inception.real.features, inp.inception_outputs[0]
  n = min(len(real), len(fake), cap)
  p, r = M.precision_recall(real[:n], fake[:n], k=IE.PR_K)
  return {"precision_inception": p, "recall_inception": r}


METRICS.register("fid_inception", Metric(fid_inception, needs="inception",
                                         minimize=("fid_inception",)))
METRICS.register("is", Metric(inception_is, needs="inception"))
METRICS.register("kid_inception", Metric(kid_inception, needs="inception",
                                         minimize=("kid_inception_mean",)))
METRICS.register("pr_inception", Metric(pr_inception, needs="inception"))
