"""Latent-space tools and the run report."""
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.eval import latent, report, sampling
from jaxgan.run import train
from tests.conftest import tiny_config


def test_slerp_and_lerp_endpoints_and_norm():
  z0, z1 = jnp.array([3.0, 0.0]), jnp.array([0.0, 3.0])
  t = jnp.array([0.0, 0.5, 1.0])
  s = latent.slerp(z0, z1, t)
  np.testing.assert_allclose(s[0], z0, atol=1e-6)
  np.testing.assert_allclose(s[2], z1, atol=1e-6)
  assert float(jnp.linalg.norm(s[1])) == pytest.approx(3.0, rel=1e-5)   # on the circle
  assert float(jnp.linalg.norm(latent.lerp(z0, z1, t)[1])) == pytest.approx(3 / 2 ** 0.5)
  same = latent.slerp(z0, z0, t)  # parallel endpoints: no division by sin(0)
  assert np.all(np.isfinite(np.asarray(same)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp("run"))
  train.train_and_evaluate(tiny_config(**{"model.conditioning": "concat"}), wd)
  return wd


def test_interpolation_endpoints_equal_generator_outputs(run):
  _, gan, state = train.restore_for_sampling(run)
  z = gan.sample_latents(jax.random.PRNGKey(5), 2)
  for method in ("linear", "spherical"):
    imgs = latent.interpolate(gan, state, z[0], z[1], 7, method, label=3)
    gen = sampling.generator_fn(gan)
    ends = np.asarray(gen(state.ema if state.ema is not None else state.g.params, state.g.stats,
                          z, jnp.array([3, 3])))
    from jaxgan.eval.visualize import to_uint8
    np.testing.assert_array_equal(imgs[0], to_uint8(ends[0]))
    np.testing.assert_array_equal(imgs[-1], to_uint8(ends[1]))
    assert imgs.shape == (7, 28, 28, 1) and not np.array_equal(imgs[0], imgs[3])


def test_explore_writes_strips_gifs_and_class_grid(run):
  _, gan, state = train.restore_for_sampling(run)
  out = latent.explore(gan, state, run, pairs=2, steps=5)
  assert set(out) == {"interp_linear_png", "interp_linear_gif", "interp_spherical_png",
                      "interp_spherical_gif", "class_grid_png"}
  from PIL import Image
  with Image.open(out["interp_linear_gif"]) as gif:
    assert gif.n_frames == 2 * 5 - 2


def test_report_renders_and_links_only_to_existing_files(run):
  _, gan, state = train.restore_for_sampling(run)
  latent.explore(gan, state, run, pairs=1, steps=4)
  path = report.build(run)
  page = open(path).read()
  links = re.findall(r'(?:src|href)="([^"]+)"', page)
  assert "losses.png" in links and any(l.startswith("samples/step_") for l in links)
  assert "class_grid.png" in links
  for l in links:
    assert os.path.exists(os.path.join(run, l)), l
  assert "<h2>Config</h2>" in page and "&quot;loss&quot;: &quot;non_saturating&quot;" in page


def test_report_plots_overfitting_signals_only_when_logged(tmp_path):
  rows = [{"step": s, "d_loss": 1.0 / s, "d_real_train": 0.1 * s, "d_real_heldout": 0.05 * s,
           "d_real_sign": 0.2, "augment_p": 0.01 * s} for s in (1, 2, 3)]
  (tmp_path / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
  page = open(report.build(str(tmp_path))).read()
  assert 'src="overfitting.png"' in page and (tmp_path / "overfitting.png").stat().st_size > 0
  plain = tmp_path / "plain"
  plain.mkdir()
  (plain / "metrics.jsonl").write_text(json.dumps({"step": 1, "d_loss": 1.0}) + "\n")
  page = open(report.build(str(plain))).read()
  assert "overfitting.png" not in page and not (plain / "overfitting.png").exists()
