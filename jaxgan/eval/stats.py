"""Sample-quality metrics on feature vectors: pure functions in float64 NumPy.

* Frechet distance (Heusel et al. 2017) between Gaussians fitted to two feature sets, with
  the mean and covariance accumulated batch by batch (`GaussianStats`).
* KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets (mean and std).
* Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls around each set.
* Density and coverage (Naeem et al. 2020): k-NN balls around the real samples only.
* Class coverage: a classifier's histogram of generated samples against the data's class
  distribution, so mode collapse shows as a number.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np


class GaussianStats:
  """Streaming mean and covariance (float64), fed batch by batch."""

  def __init__(self, dim: int):
    self.n = 0
    self.sum = np.zeros(dim, np.float64)
    self.outer = np.zeros((dim, dim), np.float64)

  def update(self, feats) -> "GaussianStats":
    f = np.asarray(feats, np.float64)
    self.n += f.shape[0]
    self.sum += f.sum(0)
    self.outer += f.T @ f
    return self

  @property
  def mean(self) -> np.ndarray:
    return self.sum / self.n

  @property
  def cov(self) -> np.ndarray:
    """Unbiased sample covariance (divides by n - 1, like np.cov)."""
    mu = self.mean
    return (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((a + a.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), and the inner matrix is symmetric
  positive semi-definite, so both square roots come from `eigh` with negative round-off
  eigenvalues clipped: stable where scipy.linalg.sqrtm returns complex noise."""
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  r1 = _sqrtm_psd(s1)
  m = r1 @ s2 @ r1
  tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)))
  d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
  return max(d, 0.0)


def frechet_distance_from_features(f1, f2) -> float:
  a = GaussianStats(f1.shape[1]).update(f1)
  b = GaussianStats(f2.shape[1]).update(f2)
  return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def _poly_kernel(x, y):
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
  """Unbiased MMD^2 with the cubic polynomial kernel."""
  m, n = x.shape[0], y.shape[0]
  kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def kid(real, fake, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> Tuple[float, float]:
  """Kernel Inception Distance (mean, std over random subsets without replacement)."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  size = min(subset_size, len(real), len(fake))
  if size < 2:
    raise ValueError("KID needs at least 2 samples in each set.")
  gen = np.random.default_rng(seed)
  vals = [mmd2_unbiased(real[gen.choice(len(real), size, replace=False)],
                        fake[gen.choice(len(fake), size, replace=False)])
          for _ in range(num_subsets)]
  return float(np.mean(vals)), float(np.std(vals))


def _sq_dists(a, b):
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
  return np.maximum(d, 0.0)


def knn_radii(x, k: int, chunk: int = 2048) -> np.ndarray:
  """Squared distance from each row of x to its k-th nearest other row."""
  x = np.asarray(x, np.float64)
  if len(x) <= k:
    raise ValueError(f"k-NN radii need more than k={k} samples, got {len(x)}.")
  out = np.empty(len(x))
  for s in range(0, len(x), chunk):
    d = _sq_dists(x[s:s + chunk], x)
    out[s:s + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
  return out


def _inside_any_ball(points, centres, radii, chunk: int = 2048) -> np.ndarray:
  """For each point: how many balls (centre, squared radius) contain it."""
  counts = np.zeros(len(points), np.int64)
  for s in range(0, len(points), chunk):
    d = _sq_dists(points[s:s + chunk], centres)
    counts[s:s + chunk] = (d <= radii[None, :]).sum(1)
  return counts


def precision_recall(real, fake, k: int = 3) -> Tuple[float, float]:
  """Improved precision (fakes inside the real manifold) and recall (reals inside the
  fake manifold), manifolds being unions of k-NN balls."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  precision = float(np.mean(_inside_any_ball(fake, real, knn_radii(real, k)) > 0))
  recall = float(np.mean(_inside_any_ball(real, fake, knn_radii(fake, k)) > 0))
  return precision, recall


def density_coverage(real, fake, k: int = 5) -> Tuple[float, float]:
  """Density: mean number of real k-NN balls containing a fake, over k (1 when the two
  distributions match). Coverage: fraction of real balls that hold at least one fake."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  radii = knn_radii(real, k)
  density = float(_inside_any_ball(fake, real, radii).sum() / (k * len(fake)))
  covered = np.zeros(len(real), bool)
  for s in range(0, len(fake), 2048):
    covered |= (_sq_dists(fake[s:s + 2048], real) <= radii[None, :]).any(0)
  return density, float(covered.mean())


def class_coverage(pred_classes, num_classes: int, data_dist: Optional[np.ndarray] = None,
                   min_share: float = 0.1, eps: float = 1e-6) -> Dict[str, object]:
  """Mode coverage from a classifier's predictions on generated samples.

  A class counts as covered when it receives at least `min_share` of the share the data
  gives it (10% by default). `class_kl` is KL(p_data || p_generated) in nats (0 when the
  generated class frequencies match the data; large when classes are missing)."""
  p_data = (np.full(num_classes, 1.0 / num_classes) if data_dist is None
            else np.asarray(data_dist, np.float64) / np.sum(data_dist))
  hist = np.bincount(np.asarray(pred_classes), minlength=num_classes)[:num_classes]
  p_gen = hist / max(hist.sum(), 1)
  covered = int(np.sum(p_gen >= min_share * p_data))
  kl = float(np.sum(p_data * (np.log(p_data + eps) - np.log(p_gen + eps))))
  return {"class_histogram": hist.tolist(), "classes_covered": covered, "class_kl": kl}


def nearest_l1(queries, references) -> Tuple[np.ndarray, np.ndarray]:
  """For each query image, the index of and the mean absolute difference to the nearest
  reference image (SEEDS.md section 2 memorisation check). Images as uint8 or floats."""
  q = np.asarray(queries, np.float32).reshape(len(queries), -1)
  r = np.asarray(references, np.float32).reshape(len(references), -1)
  dists = np.stack([np.abs(r - qi).mean(1) for qi in q])
  idx = dists.argmin(1)
  return idx, dists[np.arange(len(q)), idx].astype(np.float64)
