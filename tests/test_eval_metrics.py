"""Metric math against closed forms and independent (scipy) computations."""
import numpy as np
import pytest
import scipy.linalg

from jaxgan.eval import stats as M

RS = np.random.RandomState(0)


def test_streaming_stats_equal_numpy():
  x = RS.randn(1000, 7) * 3 + 1
  s = M.GaussianStats(7)
  for i in range(0, 1000, 128):
    s.update(x[i:i + 128])
  np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-12)
  np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)


def test_fd_of_a_set_with_itself_is_zero():
  x = RS.randn(500, 16)
  assert M.frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_between_diagonal_gaussians_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  want = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
  got = M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(want, rel=1e-10)  # 5 + (1+4-4) + (4+1-4) + (9+1-6) = 11
  assert want == pytest.approx(11.0)


def test_fd_agrees_with_scipy_sqrtm_on_random_features():
  x = RS.randn(2000, 20)
  y = RS.randn(2000, 20) @ RS.randn(20, 20) * 0.3 + 0.5
  mu1, mu2 = x.mean(0), y.mean(0)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
  assert M.frechet_distance_from_features(x, y) == pytest.approx(want, rel=1e-7)


def test_fd_stays_finite_for_singular_covariances():
  x = np.repeat(RS.randn(50, 1), 10, axis=1)  # rank 1
  y = RS.randn(50, 10)
  assert np.isfinite(M.frechet_distance_from_features(x, y))


def test_kid_near_zero_for_one_distribution_and_grows_with_shift():
  a, b = RS.randn(1500, 32), RS.randn(1500, 32)
  same, std = M.kid(a, b, num_subsets=20, subset_size=500)
  assert abs(same) < 3 * std + 1e-3
  shifted = [M.kid(a, b + s, num_subsets=20, subset_size=500)[0] for s in (0.25, 0.5, 1.0)]
  assert same < shifted[0] < shifted[1] < shifted[2]


def test_mmd_unbiased_matches_direct_double_sum():
  x, y = RS.randn(6, 3), RS.randn(5, 3)
  k = lambda u, v: (u @ v / 3 + 1) ** 3
  m, n = len(x), len(y)
  want = (sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
          + sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
          - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n))
  assert M.mmd2_unbiased(x, y) == pytest.approx(want, rel=1e-10)


def clusters(centres, n, rs):
  return np.concatenate([c + 0.1 * rs.randn(n, 2) for c in centres])


def test_precision_recall():
  rs = np.random.RandomState(1)
  real = clusters([(0, 0), (5, 0), (0, 5)], 200, rs)
  p, r = M.precision_recall(real, real.copy(), k=3)
  assert p == 1.0 and r == 1.0
  fake_missing = clusters([(0, 0), (5, 0)], 300, rs)  # one mode dropped
  p, r = M.precision_recall(real, fake_missing, k=3)
  assert p > 0.95 and r < 0.7
  fake_off = clusters([(20, 20)], 600, rs)  # off the data manifold
  p, _ = M.precision_recall(real, fake_off, k=3)
  assert p == 0.0


def test_density_and_coverage():
  rs = np.random.RandomState(2)
  real = clusters([(0, 0), (5, 0), (0, 5)], 200, rs)
  d, c = M.density_coverage(real, clusters([(0, 0), (5, 0), (0, 5)], 200, rs), k=5)
  assert 0.7 < d < 1.3 and c > 0.9
  _, c = M.density_coverage(real, clusters([(0, 0)], 600, rs), k=5)
  assert c < 0.4


def test_class_coverage_flags_a_one_class_generator():
  out = M.class_coverage(np.full(1000, 3), 10)
  assert out["classes_covered"] == 1 and out["class_histogram"][3] == 1000
  assert out["class_kl"] > 5
  balanced = M.class_coverage(np.arange(1000) % 10, 10)
  assert balanced["classes_covered"] == 10 and balanced["class_kl"] == pytest.approx(0, abs=1e-4)


def test_nearest_l1_finds_an_exact_copy():
  train = RS.randint(0, 256, (50, 8, 8, 1)).astype(np.uint8)
  queries = np.stack([train[17], (train[3].astype(int) + 1).clip(0, 255).astype(np.uint8)])
  idx, dist = M.nearest_l1(queries, train)
  assert idx[0] == 17 and dist[0] == 0.0
  assert idx[1] == 3 and 0 < dist[1] <= 1.0
