"""The metric registry: names, what each metric is served, metrics of the generator."""
import jax
import numpy as np
import pytest

from jaxgan.eval import metrics as metrics_lib
from jaxgan.core import state as state_lib
from jaxgan.eval import evaluate as E
from jaxgan.eval.metrics import METRICS, Inputs, Metric, ppl
from tests.conftest import tiny_config


def pixel_extractor(predict=None):
  flat = lambda im: np.asarray(im, np.float64).reshape(len(im), -1)
  return E.Extractor("pix", lambda im: flat(im) / 127.5 - 1.0, predict,
                     num_classes=3 if predict else 0, features_float=flat)


def real_stats(n=50, seed=0):
  f = np.random.RandomState(seed).randn(n, 4 * 4)
  return E.RealStats(f.mean(0), np.cov(f, rowvar=False), f, np.full(3, 1 / 3))


def test_names_all_and_unknown():
  assert metrics_lib.parse("all") == METRICS.names()
  assert {"fd", "kid", "pr", "dc", "classes", "ppl"} <= set(METRICS.names())
  assert metrics_lib.parse(" fd , kid") == ["fd", "kid"]
  with pytest.raises(ValueError, match="Unknown metric 'fid'.*Valid metric names: classes"):
    metrics_lib.parse("fd,fid")


def test_only_metrics_the_inputs_can_serve_are_computed():
  images = np.random.RandomState(1).randint(0, 256, (40, 4, 4, 1)).astype(np.uint8)
  inp = Inputs(images, None, pixel_extractor(), real_stats())
  out = metrics_lib.compute(["fd", "classes", "ppl"], inp)
  assert "fd" in out and "classes_covered" not in out and "ppl" not in out  # no predict, no G
  inp = Inputs(images, np.zeros(40, np.int32),
               pixel_extractor(lambda im: np.zeros(len(im), np.int64)), real_stats())
  out = metrics_lib.compute(["classes"], inp)
  assert out["classes_covered"] == 1 and out["label_accuracy"] == 1.0


def test_fd_of_a_sample_against_its_own_statistics_is_zero():
  images = np.random.RandomState(2).randint(0, 256, (60, 4, 4, 1)).astype(np.uint8)
  ex = pixel_extractor()
  f = ex.features(images)
  real = E.RealStats(f.mean(0), np.cov(f, rowvar=False), f, None)
  assert metrics_lib.compute(["fd"], Inputs(images, None, ex, real))["fd"] == pytest.approx(
      0.0, abs=1e-6)


def test_a_registered_generator_metric_receives_the_generator(monkeypatch):
  seen = []
  monkeypatch.setitem(METRICS._items, "spy", Metric(
      lambda inp: seen.append((inp.gan.latent_dim, int(inp.state.step))) or {"spy": 1.0},
      needs="generator"))
  c = tiny_config(**{"model.latent_dim": 3, "model.mlp.g_widths": (8,),
                     "model.mlp.d_widths": (8,), "data.image_size": 4})
  gan, state = state_lib.create(c, (4, 4, 1), 0)
  ev = E.Evaluator.__new__(E.Evaluator)
  ev.config, ev.extractor, ev.real, ev.inception = c, pixel_extractor(), real_stats(), None
  out = ev.evaluate_generator(gan, state, 20, jax.random.PRNGKey(0), metrics="spy,fd")
  assert seen == [(3, 0)] and out["spy"] == 1.0 and "fd" in out


def test_ppl_scales_with_the_square_of_the_generator_scale():
  """With identity features, G's output layer scaled by s and its bias at 0 (tanh ~ linear
  near 0), path lengths scale by s^2; a generator whose output ignores z has none."""
  c = tiny_config(**{"model.latent_dim": 3, "model.mlp.g_widths": (64,),
                     "model.mlp.d_widths": (8,)})
  gan, state = state_lib.create(c, (4, 4, 1), 0)
  ex = pixel_extractor()

  def lengths(scale):
    def set_out(path, p):
      name = jax.tree_util.keystr(path)
      if "out" not in name:
        return p
      return p * 0.0 if "bias" in name else p * scale
    params = jax.tree_util.tree_map_with_path(set_out, state.g.params)
    st = state.replace(g=state.g.replace(params=params))
    return ppl.path_length_samples(Inputs(np.zeros((64, 4, 4, 1), np.uint8), None, ex, None,
                                          gan=gan, state=st, key=jax.random.PRNGKey(0)), 64)

  small, double = lengths(0.02), lengths(0.04)
  assert np.mean(small > 0) > 0.9   # (all ReLUs of G can be off at some z)
  assert np.median(double[small > 0] / small[small > 0]) == pytest.approx(4.0, rel=2e-2)
  assert np.all(lengths(0.0) == 0.0)
