"""Inception metrics: IS against closed forms and an independent computation, and the
Evaluator's Inception side end to end (weights file -> eval.json with its protocol)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special

import torch_format
from jaxgan import data as data_lib
from jaxgan.run import restore, train, validate
from jaxgan.base.errors import UserError
from jaxgan.eval import inception, inception_extractor as ie, inception_weights as iw
from jaxgan.eval.metrics import inception as MI
from tests.conftest import tiny_config


def test_inception_score_closed_forms():
  n, k = 200, 10
  assert MI.inception_score(np.zeros((n, 1008))) == pytest.approx((1.0, 0.0))
  # each split holds every one of k classes equally often, each sample certain of its own
  onehot = np.zeros((n, 1008))
  onehot[np.arange(n), np.arange(n) % k] = 1000.0
  mean, std = MI.inception_score(onehot)
  assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
  # a split whose samples all agree on one class scores 1: the mean over splits shows it
  same = np.zeros((n, 1008))
  same[:, 3] = 1000.0
  assert MI.inception_score(same)[0] == pytest.approx(1.0)


def test_inception_score_matches_an_independent_computation():
  logits = np.random.RandomState(0).randn(103, 1008) * 3
  p = scipy.special.softmax(logits, axis=1)
  got = MI.inception_score(logits)
  bounds = [i * 103 // 10 for i in range(11)]   # the original code's consecutive splits
  want = [np.exp(scipy.special.rel_entr(p[a:b], p[a:b].mean(0, keepdims=True)).sum(1).mean())
          for a, b in zip(bounds, bounds[1:])]
  assert got[0] == pytest.approx(np.mean(want), rel=1e-10)
  assert got[1] == pytest.approx(np.std(want), rel=1e-8)
  with pytest.raises(ValueError, match="at least 10 samples"):
    MI.inception_score(logits[:5])


@pytest.fixture(scope="module")
def run_and_weights(tmp_path_factory):
  """A tiny trained run on 32 images and a random FID-Inception weights file; the network
  sees 75x75 inputs (its smallest) instead of 299x299 to save CPU time."""
  patch = pytest.MonkeyPatch()
  patch.setattr(inception, "SIZE", 75)
  tmp = tmp_path_factory.mktemp("inception_eval")
  cfg = tiny_config(**{"data.max_examples": 32, "eval.cache_dir": str(tmp / "cache"),
                       "eval.classifier_steps": 20, "eval.memorization_samples": 2})
  wd = str(tmp / "run")
  train.train_and_evaluate(cfg, wd)
  weights = str(tmp / "pt_inception_random.pth")
  torch_format.save(torch_format.random_inception_state(5), weights)
  yield wd, weights
  patch.undo()


def test_mode_eval_writes_inception_metrics_with_their_protocol(run_and_weights):
  wd, weights = run_and_weights
  over = [("eval.inception_weights", weights), ("eval.inception_sha256", "any")]
  r = restore.evaluate_checkpoint(wd, num_samples=20, metrics="fid_inception,is,fd",
                                  overrides=over)
  stored = json.load(open(os.path.join(wd, "eval.json")))
  for k in ("fid_inception", "is_mean", "is_std", "fd"):
    assert np.isfinite(stored[k]) and stored[k] == r[k]
  assert stored["fid_inception"] > 0 and stored["is_mean"] >= 1.0
  p = stored["inception_protocol"]
  assert p["weights_sha256"] == iw.sha256(weights) and p["weights_check"] == "other weights"
  assert p["resize"] == "bilinear" and p["num_generated"] == 20 and p["is_splits"] == 10
  assert p["input_size"] == 75
  assert "train split, 32 images" in p["reference"]
  # the reference statistics, written in pytorch-fid's format, are the features' mean and
  # covariance; read back as eval.inception_ref_stats they give the same FID
  z = np.load(p["reference_stats_file"])
  assert z["mu"].shape == (2048,) and z["sigma"].shape == (2048, 2048)
  g, s, info = iw.load(weights, str(os.path.dirname(wd)) + "/cache", expected="any")
  real = data_lib.load(tiny_config(**{"data.max_examples": 32}).data).images
  f = ie.InceptionExtractor(g, s, info).features(real)
  np.testing.assert_allclose(z["mu"], f.mean(0), rtol=1e-6, atol=1e-8)
  r2 = restore.evaluate_checkpoint(
      wd, num_samples=20, metrics="fid_inception",
      overrides=over + [("eval.inception_ref_stats", p["reference_stats_file"])])
  assert r2["fid_inception"] == pytest.approx(r["fid_inception"], rel=1e-9)
  assert r2["inception_protocol"]["reference"] == p["reference_stats_file"]


def test_without_the_weights_file_eval_stops_at_once_with_one_line(run_and_weights):
  wd, _ = run_and_weights
  proc = subprocess.run(
      [sys.executable, "launch.py", "--workdir", wd, "--mode", "eval",
       "--config.eval.metrics=fid_inception,is,fd",
       "--config.eval.inception_weights=/nonexistent/pt_inception.pth"],
      capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
      timeout=300)
  assert proc.returncode == 2, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and "Traceback" not in proc.stderr
  for part in ("/nonexistent/pt_inception.pth", "6726825d", iw.PUBLISHED_URL,
               "--config.eval.inception_weights=PATH"):
    assert part in lines[0]
  assert not os.path.exists(os.path.join(wd, "eval.json.tmp"))


def test_bad_inception_settings_name_the_field(run_and_weights):
  wd, weights = run_and_weights
  with pytest.raises(UserError, match=r"--config.eval.inception_resize=lanczos: .*bilinear"):
    restore.evaluate_checkpoint(wd, overrides=[("eval.inception_resize", "lanczos")])
  with pytest.raises(UserError, match=r"--config.model.latent_dim: reading a run takes only"):
    restore.evaluate_checkpoint(wd, overrides=[("model.latent_dim", "3")])
  with pytest.raises(UserError, match=r"does not start with '6726825d'"):
    restore.evaluate_checkpoint(wd, metrics="is",
                                overrides=[("eval.inception_weights", weights)])
  cfg = tiny_config(**{"eval.every": 2, "eval.metrics": "fd,fid_inception",
                       "eval.best_metric": "fd"})
  with pytest.raises(UserError, match=r"names fid_inception, which need .*inception_weights"):
    validate.validate(cfg)


def test_inception_metrics_during_training_and_as_the_best_metric(run_and_weights, tmp_path):
  _, weights = run_and_weights   # the fixture keeps the network at 75x75
  cfg = tiny_config(**{"data.max_examples": 32, "eval.every": 3, "eval.num_samples": 16,
                       "eval.metrics": "fid_inception,is", "eval.best_metric": "fid_inception",
                       "eval.inception_weights": weights, "eval.inception_sha256": "any",
                       "eval.cache_dir": str(tmp_path / "cache")})
  validate.validate(cfg)
  train.train_and_evaluate(cfg, str(tmp_path / "run"))
  rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  evals = [r for r in rows if "eval/fid_inception" in r]
  assert [r["step"] for r in evals] == [3, 6]
  assert all(r["eval/fid_inception"] > 0 and r["eval/is_mean"] >= 1.0 for r in evals)
