"""Latent datasets (`python -m jaxgan.data.prepare SRC OUT --encoder DIR`,
jaxgan/data/encode_latents.py): what the records hold, the manifest's statistics, the
in-memory and streamed readers agreeing, and the refusals."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxgan.base.errors import UserError
from jaxgan.data import encode_latents, prepare, records, sources, stream
from jaxgan.data.pipeline import Batches
from jaxgan.pretrained import autoencoder_files
from tests.conftest import set_fields

ENCODER = os.path.join(os.path.dirname(__file__), "data", "autoencoder", "sd")


def image_folder(root, n=24, size=16):
  """n random RGB images in two class folders."""
  rng = np.random.default_rng(0)
  for i in range(n):
    d = root / ("a" if i % 2 else "b")
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(d / f"{i:03d}.png")
  return root


@pytest.fixture(scope="module")
def latent_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("latent")
  src = image_folder(root / "images")
  out = root / "latents"
  assert prepare.main([str(src), str(out), "--encoder", ENCODER, "--size", "16",
                       "--batch", "10", "--shards", "2"]) == 0
  return src, out


def test_records_hold_the_encoders_mean_and_std_of_each_image(latent_dir):
  src, out = latent_dir
  data = sources.load_prepared(str(out), 16, 3)
  model, sha = autoencoder_files.load(ENCODER)
  images = sources.load_folder(str(src), 16, 3)
  mean, std = model.encode(images.images.astype(np.float32) / 127.5 - 1)
  np.testing.assert_allclose(data.images, np.asarray(mean), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(data.stds, np.asarray(std), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(data.labels, images.labels)
  assert data.image_shape == (4, 4, 4) and data.images.dtype == np.float32
  m = records.read_manifest(str(out))
  assert m["kind"] == "latent" and m["latent_shape"] == [4, 4, 4] and m["count"] == 24
  assert m["encoder"]["weights_sha256"] == sha and m["record_counts"] == [12, 12]
  assert m["image_source"] == {"kind": "folder", "folder": str(src), "image_size": 16,
                               "channels": 3}
  # per channel: mean of the means; std of z = mean + std * eps (total variance)
  mu = np.asarray(mean, np.float64).reshape(-1, 4)
  var = np.asarray(std, np.float64).reshape(-1, 4) ** 2
  np.testing.assert_allclose(m["channel_mean"], mu.mean(0), rtol=1e-5)
  np.testing.assert_allclose(m["channel_std"], np.sqrt(mu.var(0) + var.mean(0)), rtol=1e-5)


def test_batches_carry_the_stds_and_the_stream_gives_the_same_batches(latent_dir):
  _, out = latent_dir
  data = sources.load_prepared(str(out), 16, 3)
  memory = Batches(data, 8, 1, seed=3)
  streamed = stream.StreamBatches(stream.prepared_data(str(out), 16, 3), 8, 1, seed=3,
                                  workers=0)
  try:
    for s in (0, 1, 5):
      a, b = memory.for_step(s), streamed.for_step(s)
      assert set(a) == set(b) == {"images", "stds", "labels"}
      for k in a:
        np.testing.assert_array_equal(a[k], b[k])
  finally:
    streamed.close()


def test_a_subset_and_a_shard_keep_the_stds(latent_dir):
  _, out = latent_dir
  data = sources.load_prepared(str(out), 16, 3)
  sub = sources.take_subset(data, 10, seed=0)
  assert sub.stds.shape == (10, 4, 4, 4) and sub.latent == data.latent
  part = sources.shard(data, 1, 2)
  np.testing.assert_array_equal(part.stds, data.stds[12:])


def test_latent_preparation_refuses_what_does_not_fit(latent_dir, tmp_path):
  src, out = latent_dir
  with pytest.raises(UserError, match=r"--channels=1, but the encoder .* takes 3-channel"):
    encode_latents.prepare_latents(str(src), str(tmp_path / "a"), ENCODER, 16, 1)
  with pytest.raises(UserError, match=r"--size=10: the encoder .* downsamples 4x"):
    encode_latents.prepare_latents(str(src), str(tmp_path / "b"), ENCODER, 10)
  with pytest.raises(UserError, match=r"already a latent dataset"):
    encode_latents.prepare_latents(str(out), str(tmp_path / "c"), ENCODER)
  with pytest.raises(UserError, match=r"--size is needed with --encoder"):
    encode_latents.prepare_latents(str(src), str(tmp_path / "d"), ENCODER)
  assert prepare.main([str(src), str(tmp_path / "e"), "--encoder", str(tmp_path)]) == 2


def test_sources_evaluation_cannot_read_again_are_refused(latent_dir, tmp_path):
  import zipfile
  src, _ = latent_dir
  zpath = tmp_path / "images.zip"
  with zipfile.ZipFile(zpath, "w") as z:
    z.write(next(src.rglob("*.png")), "a/0.png")
  with pytest.raises(UserError, match=r"a latent run's evaluation reads the source images"):
    encode_latents.prepare_latents(str(zpath), str(tmp_path / "z"), ENCODER, 16)
  prepared = tmp_path / "gray"
  prepare.prepare(str(src), str(prepared), size=16, channels=1)
  with pytest.raises(UserError, match=r"prepared at 16x16x1, but encoder's channels asks for 3"):
    encode_latents.prepare_latents(str(prepared), str(tmp_path / "g"), ENCODER)
