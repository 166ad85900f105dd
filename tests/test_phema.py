"""Post-hoc EMA (EDM2, Karras et al. 2024): the power-function profiles' closed forms, the
in-step update, the least-squares reconstruction against an EMA computed directly, and
the snapshots, modes and errors of a run (jaxgan/core/phema.py, jaxgan/eval/posthoc_ema.py,
jaxgan/run/posthoc.py). Reference numbers: NVlabs/edm2 at 4bf8162, worked in float64."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jaxgan.base.errors import UserError
from jaxgan.core import phema
from jaxgan.eval import posthoc_ema
from jaxgan.run import posthoc, restore, train, validate
from tests.conftest import tiny_config


def test_gamma_is_the_real_root_of_edm2s_cubic():
  # values of EDM2's numpy.roots solve (training/phema.py: std_to_exp)
  for s, want in ((0.05, 16.9721986023), (0.10, 6.9372039376), (0.01, 96.9948978237),
                  (0.15, 3.5578687749), (0.20, 1.8262137799)):
    assert phema.sigma_rel_to_gamma(s) == pytest.approx(want, abs=1e-9)
  for s in np.linspace(0.002, 0.288, 60):   # our closed form against numpy's root finder
    k = s ** -2
    roots = np.roots([1.0, 7.0, 16.0 - k, 12.0 - k])
    assert phema.sigma_rel_to_gamma(s) == pytest.approx(roots.real.max(), rel=1e-12)
    assert phema.gamma_to_sigma_rel(phema.sigma_rel_to_gamma(s)) == pytest.approx(s, rel=1e-12)
  with pytest.raises(ValueError, match="sigma_rel"):
    phema.sigma_rel_to_gamma(0.3)


def test_profile_inner_product_equals_its_integral():
  g05, g10 = phema.sigma_rel_to_gamma(0.05), phema.sigma_rel_to_gamma(0.10)
  assert phema.profile_dot(100, g05, 200, g10) == pytest.approx(2.33651714e-04, rel=1e-8)
  assert phema.profile_dot(3, 2.0, 5, 7.0) == pytest.approx(1.34369280e-02, rel=1e-8)
  p = lambda tau, t, g: (g + 1) * tau ** g / t ** (g + 1)
  for ta, ga, tb, gb in ((3.0, 2.0, 5.0, 7.0), (7.0, 0.5, 2.0, 3.0), (4.0, 6.9, 4.0, 16.9)):
    want, _ = integrate.quad(lambda u: p(u, ta, ga) * p(u, tb, gb), 0, min(ta, tb))
    assert phema.profile_dot(ta, ga, tb, gb) == pytest.approx(want, rel=1e-9)
    assert phema.profile_dot(tb, gb, ta, ga) == pytest.approx(want, rel=1e-9)


def test_the_step_update_gives_the_power_function_weights():
  """After T updates, update k's weights carry (k/T)^(g+1) - ((k-1)/T)^(g+1): tracking
  one-hot 'parameters' shows each update's weight in the average."""
  T, sigmas = 40, (0.05, 0.2)
  gammas = [phema.sigma_rel_to_gamma(s) for s in sigmas]
  profiles = tuple({"w": jnp.full((T,), 7.0)} for _ in sigmas)   # the initial weights
  for k in range(1, T + 1):
    profiles = phema.update(profiles, {"w": jax.nn.one_hot(k - 1, T)}, k, gammas)
  ks = np.arange(1, T + 1)
  for prof, g in zip(profiles, gammas):
    want = (ks / T) ** (g + 1) - ((ks - 1) / T) ** (g + 1)
    np.testing.assert_allclose(prof["w"], want, atol=2e-6)   # the initial 7s: weight 0
  assert float(phema.betas(1, gammas)[0]) == 0.0
  big = float(phema.betas(1_000_000, [gammas[0]])[0])     # float32 keeps it accurate
  assert big == pytest.approx((1 - 1e-6) ** (gammas[0] + 1), rel=1e-6)


def test_reconstruction_equals_the_ema_computed_directly():
  """A synthetic weight trajectory; profiles 0.05 and 0.10 saved every 100 of 2000 steps;
  the reconstruction of 0.07 and 0.15 at the end against the EMA of that profile run
  alongside: the error, relative to the EMA's distance from the final weights, is below
  2e-3 (measured 2.3e-4 and 3.9e-4; float32 output)."""
  rng = np.random.default_rng(0)
  T, every, dim = 2000, 100, 64
  walk = np.cumsum(rng.normal(size=(T, dim)), axis=0) / np.sqrt(np.arange(1, T + 1))[:, None]
  sigmas, targets = (0.05, 0.10), (0.07, 0.15)
  gammas = [phema.sigma_rel_to_gamma(s) for s in sigmas + targets]
  ema = [np.zeros(dim) for _ in gammas]
  snaps = []
  for k in range(1, T + 1):
    for i, g in enumerate(gammas):
      beta = (1 - 1 / k) ** (g + 1)
      ema[i] = beta * ema[i] + (1 - beta) * walk[k - 1]
    if k % every == 0:
      snaps.append((k, [ema[0].copy(), ema[1].copy()]))
  in_t = [k for k, _ in snaps for _ in sigmas]
  trees = [v for _, vs in snaps for v in vs]
  for j, target in enumerate(targets):
    coef = phema.solve_coefficients(in_t, list(sigmas) * len(snaps), T, [target])[:, 0]
    assert coef.sum() == pytest.approx(1.0)
    got = phema.combine(coef, trees)
    direct = ema[2 + j]
    err = np.linalg.norm(got - direct) / np.linalg.norm(direct - walk[-1])
    assert err < 2e-3, (target, err)
  # a tracked profile at the last snapshot is itself: one-hot coefficients
  coef = phema.solve_coefficients(in_t, list(sigmas) * len(snaps), T, [0.10])[:, 0]
  np.testing.assert_allclose(coef, np.eye(len(in_t))[-1], atol=1e-9)


def test_solve_matches_edm2_worked_example():
  """8 snapshots at 8, 16, 24, 32 Mi images x (0.05, 0.10), target 0.08 at 32 Mi."""
  mi = 8 << 20
  t = [k * mi for k in (1, 2, 3, 4) for _ in (0, 1)]
  x = phema.solve_coefficients(t, [0.05, 0.10] * 4, 4 * mi, [0.08])[:, 0]
  want = [1.335264e-07, -1.825044e-06, 1.792419e-04, -9.713877e-04, 1.144141e-02,
          -4.175459e-02, 2.505392e-01, 7.805678e-01]
  np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-12)


@pytest.fixture(scope="module")
def phema_run(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp("phema") / "run")
  c = tiny_config(**{"train.steps": 12, "train.checkpoint_every": 6, "data.batch_size": 8,
                     "ema_decay": 0.9, "phema.sigma_rels": (0.05, 0.1),
                     "phema.snapshot_images": 8 * 5, "train.sample_every": 0})
  state = train.train_and_evaluate(c, wd)
  return wd, state


def test_a_run_saves_snapshots_at_exact_image_counts_and_the_end(phema_run):
  wd, state = phema_run
  snaps = posthoc_ema.list_snapshots(wd)
  assert [(s.images, s.step) for s in snaps] == [(40, 5), (80, 10), (96, 12)]
  assert all(s.sigma_rels == (0.05, 0.1) for s in snaps)
  last = list(posthoc_ema._profiles(snaps[-1], state.g.params))  # pylint: disable=protected-access
  for saved, live in zip(last, state.phema):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), saved, live)


def test_sampling_with_a_tracked_width_gives_that_profile(phema_run):
  wd, state = phema_run
  _, _, st = restore.restore_for_sampling(wd, "latest", ema_sigma_rel=0.1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               st.ema, state.phema[1])
  _, _, between = restore.restore_for_sampling(wd, "latest", ema_sigma_rel=0.07)
  a, b, m = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])
             for t in (state.phema[0], state.phema[1], between.ema))
  assert not np.allclose(m, a) and not np.allclose(m, b)


def test_posthoc_sweep_writes_the_curve_the_best_and_the_report(phema_run):
  wd, _ = phema_run
  out = posthoc.sweep(wd, (0.05, 0.1, 0.2), num_samples=64, metrics="fd")
  with open(os.path.join(wd, posthoc.JSON)) as f:
    saved = json.load(f)
  assert [r["sigma_rel"] for r in saved["rows"]] == [0.05, 0.1, 0.2]
  assert saved["best"]["fd"] == min(r["fd"] for r in saved["rows"]) == out["best"]["fd"]
  assert saved["reference"]["weights"] == "ema" and np.isfinite(saved["reference"]["fd"])
  assert os.path.getsize(os.path.join(wd, posthoc.PLOT)) > 1000
  from jaxgan.eval import report  # pylint: disable=g-import-not-at-top
  with open(report.build(wd)) as f:
    page = f.read()
  assert "Post-hoc EMA" in page and "posthoc_ema.png" in page


def test_bad_post_hoc_inputs_are_one_line_errors(phema_run, tmp_path):
  wd, _ = phema_run
  with pytest.raises(UserError,
                     match=r"--ema_sigma_rel=0.4: must be in \(0, sqrt\(1/12\) = 0.28868\)"):
    restore.restore_for_sampling(wd, "latest", ema_sigma_rel=0.4)
  plain = str(tmp_path / "plain")
  train.train_and_evaluate(tiny_config(**{"train.steps": 3}), plain)
  with pytest.raises(UserError, match=r"holds no post-hoc EMA snapshot.*"
                                      r"--config.phema.sigma_rels=0.05,0.1"):
    restore.restore_for_sampling(plain, "latest", ema_sigma_rel=0.05)
  for bad, msg in (((0.05, 0.5), "each must be a number in"), ((0.1, 0.1), "repeats")):
    with pytest.raises(UserError, match=rf"config.phema.sigma_rels.*{msg}"):
      validate.validate(tiny_config(**{"phema.sigma_rels": bad}))
  with pytest.raises(UserError, match="--sigma_rels='a,b'"):
    posthoc.parse_sigma_rels("a,b")
