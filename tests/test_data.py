"""Data sources and the deterministic batch stream."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan import data as data_lib
from jaxgan.data import sources
from tests.conftest import tiny_config


def test_embedded_dataset_is_real_fashion_mnist():
  d = sources.load_embedded(28, 1)
  assert d.images.shape == (10000, 28, 28, 1) and d.images.dtype == np.uint8
  assert np.bincount(d.labels).tolist() == [1000] * 10
  assert d.num_classes == 10 and d.class_names[9] == "Ankle boot"
  # Real images: dark background, bright object, many distinct values per image.
  assert d.images[:, 0, 0].mean() < 5 and d.images.mean() > 50
  assert len(np.unique(d.images[0])) > 50


def test_embedded_resize_and_channels():
  d = sources.load_embedded(64, 3, max_examples=8)
  assert d.images.shape == (8, 64, 64, 3)
  np.testing.assert_array_equal(d.images[..., 0], d.images[..., 2])  # gray -> RGB


def test_tfds_mock_data_pipeline():
  with tfds.testing.mock_data(num_examples=40):
    d = sources.load_tfds("mnist", "train", "", 32, 3)
  assert d.images.shape == (40, 32, 32, 3) and d.images.dtype == np.uint8
  assert d.labels.shape == (40,) and d.labels.max() < 10 and d.num_classes == 10
  batches = data_lib.Batches(d, batch_size=8, n_critic=2, seed=0)
  b = batches.for_step(3)
  assert b["images"].shape == (2, 8, 32, 32, 3) and b["labels"].shape == (2, 8)
  np.testing.assert_array_equal(b["images"], data_lib.Batches(d, 8, 2, 0).for_step(3)["images"])


def test_tfds_unlabelled_when_label_key_empty():
  with tfds.testing.mock_data(num_examples=16):
    d = sources.load_tfds("mnist", "train", "", 28, 1, label_key="")
  assert d.labels is None and d.num_classes == 0


def test_tfds_unknown_name_and_missing_data(tmp_path):
  with pytest.raises(ValueError, match="Unknown TFDS dataset 'not_a_dataset'"):
    sources.load_tfds("not_a_dataset", "train", str(tmp_path), 28, 1)
  with pytest.raises(FileNotFoundError, match=r"not prepared under .*tfds build mnist"):
    sources.load_tfds("mnist", "train", str(tmp_path), 28, 1)


def test_image_range_after_scaling():
  from jaxgan.core.train_step import to_float
  x = to_float(np.array([0, 127, 255], np.uint8))
  np.testing.assert_allclose(x, [-1.0, 127 / 127.5 - 1, 1.0], rtol=1e-6)
  np.testing.assert_allclose(x, (np.array([0, 127, 255]) / 255 - 0.5) / 0.5, rtol=1e-6)


def write_images(root, classes=("a", "b"), per_class=3, size=(40, 30), mode="RGB"):
  rs = np.random.RandomState(0)
  for c in classes:
    (root / c).mkdir(parents=True)
    for i in range(per_class):
      arr = rs.randint(0, 256, (size[1], size[0], 3)).astype(np.uint8)
      Image.fromarray(arr).convert(mode).save(root / c / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_folder_source_with_class_subfolders(tmp_path):
  write_images(tmp_path, ("bricks", "plates"))
  d = sources.load_folder(str(tmp_path), 16, 1)
  assert d.images.shape == (6, 16, 16, 1)
  assert d.labels.tolist() == [0, 0, 0, 1, 1, 1] and d.class_names == ("bricks", "plates")


def test_folder_source_flat_is_unlabelled(tmp_path):
  rs = np.random.RandomState(1)
  for i in range(4):
    Image.fromarray(rs.randint(0, 256, (10, 10), np.uint8), "L").save(tmp_path / f"{i}.png")
  d = sources.load_folder(str(tmp_path), 8, 3)
  assert d.images.shape == (4, 8, 8, 3) and d.labels is None


def test_folder_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sources.load_folder(str(tmp_path / "nope"), 16, 1)
  with pytest.raises(FileNotFoundError, match="No images"):
    sources.load_folder(str(tmp_path), 16, 1)
  (tmp_path / "broken.png").write_bytes(b"not a png")
  with pytest.raises(ValueError, match="Cannot read image .*broken.png"):
    sources.load_folder(str(tmp_path), 16, 1)


def test_load_dispatch_and_too_small_dataset():
  c = tiny_config(**{"data.max_examples": 10, "data.batch_size": 16})
  with pytest.raises(ValueError, match="fewer than one batch"):
    data_lib.load(c.data)


def test_bilinear_resize_of_constant_image_is_constant():
  x = np.full((1, 10, 10, 1), 77, np.uint8)
  np.testing.assert_array_equal(sources.preprocess(x, 25, 1), 77)


def test_epoch_sampler_is_a_pure_function_of_seed_and_batch():
  s = data_lib.EpochSampler(100, 10, seed=5)
  epoch0 = np.concatenate([s.indices(b) for b in range(10)])
  assert sorted(epoch0.tolist()) == list(range(100))  # each example once per epoch
  epoch1 = np.concatenate([s.indices(b) for b in range(10, 20)])
  assert sorted(epoch1.tolist()) == list(range(100)) and not np.array_equal(epoch0, epoch1)
  fresh = data_lib.EpochSampler(100, 10, seed=5)
  np.testing.assert_array_equal(fresh.indices(17), s.indices(17))  # no replay needed
  assert not np.array_equal(data_lib.EpochSampler(100, 10, seed=6).indices(0), s.indices(0))


def test_drop_remainder():
  s = data_lib.EpochSampler(25, 10, seed=0)
  assert s.batches_per_epoch == 2
  assert len(set(s.indices(0)) | set(s.indices(1))) == 20


def test_celeb_a_binary_attribute_as_two_classes():
  with tfds.testing.mock_data(num_examples=12):
    d = sources.load_tfds("celeb_a", "train", "", 64, 3, label_key="attributes/Blond_Hair")
  assert d.images.shape == (12, 64, 64, 3)
  assert d.num_classes == 2 and set(d.labels.tolist()) <= {0, 1}
  assert d.class_names == ("not Blond_Hair", "Blond_Hair")


def test_unknown_label_feature_is_an_error():
  with tfds.testing.mock_data(num_examples=8):
    with pytest.raises(ValueError, match="no label feature 'attributes/Nope'"):
      sources.load_tfds("mnist", "train", "", 28, 1, label_key="attributes/Nope")


def test_subset_is_fixed_by_its_own_seed_and_counts_or_fractions():
  full = sources.load(tiny_config().data)
  c = tiny_config(**{"data.subset": 100.0, "data.subset_seed": 7})
  a, b = sources.load(c.data), sources.load(c.data)
  np.testing.assert_array_equal(a.images, b.images)       # same images every run
  assert a.images.shape[0] == 100
  # every kept image is one of the split's, in the split's order, none twice
  flat = full.images.reshape(len(full.images), -1)
  idx = [int(np.flatnonzero((flat == im.reshape(-1)).all(axis=1))[0]) for im in a.images]
  assert idx == sorted(set(idx)) and len(idx) == 100
  np.testing.assert_array_equal(a.labels, full.labels[idx])
  other = sources.load(tiny_config(**{"data.subset": 100.0, "data.subset_seed": 8}).data)
  assert not np.array_equal(a.images, other.images)
  frac = sources.load(tiny_config(**{"data.subset": 0.25}).data)
  assert len(frac.images) == round(0.25 * len(full.images))
  # the run's own seed does not change the subset
  np.testing.assert_array_equal(
      a.images, sources.load(tiny_config(**{"data.subset": 100.0, "data.subset_seed": 7,
                                            "seed": 3}).data).images)


@pytest.mark.parametrize("subset,match", [(1e9, "keeps 1000000000 of the"),
                                          (12.5, "whole number")])
def test_bad_subset_is_refused(subset, match):
  with pytest.raises(ValueError, match=r"config\.data\.subset=.*" + match):
    sources.load(tiny_config(**{"data.subset": subset}).data)


def test_empty_label_key_drops_the_labels_of_any_source():
  data = sources.load(tiny_config(**{"data.label_key": ""}).data)
  assert data.labels is None and data.num_classes == 0
