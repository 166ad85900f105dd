"""Non-square images (issue 40, item 2): one size spelling for configs, manifests and flags;
data preparation, augmentation, grids and a whole run at height != width. The
architectures' own shapes are checked in tests/test_nonsquare_models.py."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgan import config as C
from jaxgan.base import sizes
from jaxgan.base.errors import UserError
from jaxgan.core.augment import ada as A
from jaxgan.core.augment import diffaugment as D
from jaxgan.data import prepare, sources
from jaxgan.eval import sampling
from jaxgan.run import train, trials, validate
from tests.conftest import tiny_config


def test_sizes_read_every_spelling_and_refuse_what_is_not_a_size():
  for v in (28, "28", (28, 28), [28, 28]):
    assert sizes.hw(v) == (28, 28) and sizes.canonical(v) == 28
  for v in ((32, 64), [32, 64], "32,64", "32x64", " 32 , 64 "):
    assert sizes.hw(v) == (32, 64) and sizes.canonical(v) == (32, 64)
    assert json.loads(json.dumps(sizes.canonical(v))) == [32, 64]   # as a manifest holds it
    assert sizes.text(v) == "32,64" and sizes.times(v) == "32x64"
  for bad in ("abc", (1, 2, 3), True, 2.5, "3,4,5", (32.0, 64), "32,x", "32x", ",64", ""):
    assert sizes.problem(bad) == sizes.NOT_A_SIZE
  assert "[4, 4096]" in sizes.problem((3, 64)) and "[4, 4096]" in sizes.problem("32,5000")
  assert sizes.problem((4, 4096)) is None


def test_the_config_field_takes_a_pair_and_one_spelling_is_stored():
  c = tiny_config()
  for spelling in ((32, 64), "32,64", [32, 64]):
    c.data.image_size = spelling          # a literal field: any spelling is assignable
    validate.validate(c)
    assert c.data.image_size == (32, 64)  # validate keeps one spelling
  stored = C.config_to_dict(c)
  assert stored["data"]["image_size"] == [32, 64]
  back = C.config_from_dict(json.loads(json.dumps(stored)))
  assert back.data.image_size == (32, 64)
  assert C.incompatible_fields(stored, C.config_to_dict(back)) == []
  back.data.image_size = 28                # and back to an int after a pair
  assert C.incompatible_fields(stored, C.config_to_dict(back)) == ["data.image_size"]
  swept = trials.apply(tiny_config(), {"data.image_size": (16, 32)})   # a resolved copy
  swept.data.image_size = 28
  swept.data.image_size = (8, 16)
  c.data.image_size = "32,5000"
  with pytest.raises(UserError, match=r"config\.data\.image_size=.*each side in \[4, 4096\]"):
    validate.validate(c)


def _folder(root, n=6):
  rs = np.random.RandomState(0)
  for i in range(n):
    h, w = (20, 50) if i % 2 else (33, 33)
    Image.fromarray(rs.randint(0, 256, (h, w, 3)).astype(np.uint8)).save(
        os.path.join(root, f"{i}.png"))
  return root


def test_prepare_writes_a_non_square_dataset_that_loads_at_its_size(tmp_path, capsys):
  src = _folder(str(tmp_path))
  out = str(tmp_path / "prepared")
  assert prepare.main([src, out, "--size", "16,32", "--channels", "3"]) == 0
  assert "6 images of 16x32x3" in capsys.readouterr().out
  manifest = json.load(open(os.path.join(out, "manifest.json")))
  assert manifest["image_size"] == [16, 32]
  data = sources.load_prepared(out, (16, 32), 3)
  assert data.images.shape == (6, 16, 32, 3)
  folder = sources.load_folder(src, (16, 32), 3)          # the same pixels as the folder
  np.testing.assert_array_equal(data.images, folder.images)
  with pytest.raises(UserError, match=r"image_size=16, but .* has image_size 16,32; set "
                     r"--config.data.image_size=16,32, or .* --size 16"):
    sources.load_prepared(out, 16, 3)
  assert prepare.main([src, str(tmp_path / "x"), "--size", "16,3"]) == 2
  assert "--size=16,3: must have each side in [4, 4096]" in capsys.readouterr().err


def test_diffaugment_cutout_is_half_of_each_side_of_a_non_square_image():
  mask = np.asarray(D.cutout_mask(jax.random.PRNGKey(3), 64, 8, 16))[..., 0]
  rows = (mask == 0).any(axis=2).sum(axis=1)
  cols = (mask == 0).any(axis=1).sum(axis=1)
  assert rows.max() == 4 and cols.max() == 8      # the reference's int(side * 0.5 + 0.5)
  assert ((rows == 4) & (cols == 8)).any() and ((mask == 0).sum(axis=(1, 2)) > 0).all()


def test_ada_turns_a_non_square_image_only_by_0_or_180_degrees():
  x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (64, 8, 16, 1)))
  out = np.asarray(A.rotate90(jax.random.PRNGKey(5), jnp.asarray(x), jnp.float32(1.0)))
  turns = [next(k for k, ref in enumerate([a, a[::-1, ::-1]]) if np.array_equal(o, ref))
           for a, o in zip(x, out)]
  assert set(turns) == {0, 1}
  full = jax.jit(A.ada, static_argnums=3)(jax.random.PRNGKey(1), jnp.asarray(x),
                                          jnp.float32(1.0), "bgc")
  assert full.shape == x.shape and bool(jnp.all(jnp.isfinite(full)))


def test_a_dcgan_run_at_16x32_trains_samples_and_exports_wide_images(tmp_path):
  c = tiny_config(**{"model.arch": "dcgan", "data.image_size": (16, 32),
                     "model.dcgan.g_base_features": 8, "model.dcgan.d_base_features": 8,
                     "train.steps": 3,
                     "train.sample_every": 3})
  wd = str(tmp_path / "run")
  state = train.train_and_evaluate(c, wd)
  assert int(state.step) == 3
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert np.isfinite(rows[-1]["d_loss"]) and np.isfinite(rows[-1]["g_loss"])
  # 4 images in a row of sample.grid_cols = 8 tiles of 16 x 32 with 2 px borders, enlarged
  # 112 // 32 = 3 times (by the long side)
  png = Image.open(os.path.join(wd, "samples", "step_0000003.png"))
  assert c.sample.grid_cols == 8 and png.size == (3 * (8 * 34 + 2), 3 * (18 + 2))
  _, gan, restored = train.restore_for_sampling(wd)
  npz = np.load(sampling.export(gan, restored, wd, 5, seed=0)["npz"])
  assert npz["images"].shape == (5, 16, 32, 1)
