"""Prepared datasets and streaming (issue 22): jaxgan.data.prepare, records, stream, choose.

Tiny generated images, so every test takes seconds; streamed batches are compared bit for
bit with the in-memory batches of the same prepared data.
"""
import json
import os
import subprocess
import sys
import zipfile

import chex
import numpy as np
import pytest
from PIL import Image

from jaxgan.data import choose, pipeline, prepare, records, resize, sources, stream
from jaxgan.base.errors import UserError, UserFileError
from tests.conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _image(rs, h, w, mode):
  """A structured image: a gradient plus noise, so PNG and the resize have work to do."""
  grad = np.add.outer(np.arange(h) * 7, np.arange(w) * 3) % 256
  x = (grad[..., None] + rs.randint(0, 40, (h, w, 3))) % 256
  img = Image.fromarray(x.astype(np.uint8))
  return img.convert(mode)


def make_folder(root, classes=("cat", "dog"), per_class=10, seed=0):
  """Images of mixed sizes and modes, in one sub-folder per class (none: flat)."""
  rs = np.random.RandomState(seed)
  dirs = [os.path.join(root, c) for c in classes] or [root]
  for k, d in enumerate(dirs):
    os.makedirs(d, exist_ok=True)
    for i in range(per_class):
      mode = ("RGB", "L", "RGBA")[i % 3]
      _image(rs, 10 + i % 5, 12 + k, mode).save(os.path.join(d, f"img{i:03d}.png"))
  return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """(image folder, prepared dir of it at 8x8x3 in 3 record files)."""
  base = tmp_path_factory.mktemp("prep")
  src = make_folder(str(base / "src"), per_class=20)
  out = str(base / "out")
  prepare.prepare(src, out, size=8, channels=3, shards=3)
  return src, out


def test_resize_and_grayscale_equal_tensorflow_exactly():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rs = np.random.RandomState(0)
  cases = [(28, 28, 64, 1), (64, 48, 28, 3), (7, 13, 5, 3), (100, 100, 64, 3),
           (28, 28, (32, 64), 1), (48, 64, (64, 32), 3)]   # to non-square sizes: (h, w)
  for h, w, s, c in cases:
    x = rs.randint(0, 256, (2, h, w, c)).astype(np.uint8)
    t = tf.image.resize(tf.cast(x, tf.float32), s if isinstance(s, tuple) else (s, s),
                        method="bilinear")
    t = tf.cast(tf.clip_by_value(tf.round(t), 0, 255), tf.uint8).numpy()
    np.testing.assert_array_equal(resize.resize_bilinear(x, s), t)
  x = rs.randint(0, 256, (500, 40, 3)).astype(np.uint8)
  np.testing.assert_array_equal(resize.rgb_to_gray(x), tf.image.rgb_to_grayscale(x).numpy())


def test_prepare_folder_with_subfolder_labels_equals_the_folder_in_memory(prepared):
  src, out = prepared
  m = json.load(open(os.path.join(out, records.MANIFEST)))
  assert (m["count"], m["image_size"], m["channels"]) == (40, 8, 3)
  assert (m["num_classes"], m["class_names"]) == (2, ["cat", "dog"])
  assert m["record_counts"] == [13, 13, 14] and len(m["records"]) == 3
  assert m["sha256"] == records.sha256_of(records.record_paths(out, m))
  folder = sources.load_folder(src, 8, 3)
  loaded = sources.load_prepared(out, 8, 3)
  np.testing.assert_array_equal(loaded.images, folder.images)
  np.testing.assert_array_equal(loaded.labels, folder.labels)
  assert loaded.labels.tolist() == [0] * 20 + [1] * 20 and loaded.name == "prepared:out"


def test_prepare_zip_with_a_json_label_file_and_unlabelled(tmp_path):
  src = make_folder(str(tmp_path / "flat"), classes=(), per_class=6)
  names = sorted(os.listdir(src))
  zpath = str(tmp_path / "images.zip")
  with zipfile.ZipFile(zpath, "w") as z:
    for n in names:
      z.write(os.path.join(src, n), f"sub/{n}")
  labels = tmp_path / "dataset.json"
  labels.write_text(json.dumps({"labels": [[f"sub/{n}", i % 4] for i, n in enumerate(names)]}))
  m = prepare.prepare(zpath, str(tmp_path / "z"), size=6, channels=1, labels=str(labels))
  assert (m["count"], m["num_classes"], m["class_names"]) == (6, 4, ["0", "1", "2", "3"])
  data = sources.load_prepared(str(tmp_path / "z"), 6, 1)
  assert data.images.shape == (6, 6, 6, 1) and data.labels.tolist() == [0, 1, 2, 3, 0, 1]
  flat = prepare.prepare(src, str(tmp_path / "u"), size=6, channels=1)
  assert flat["num_classes"] == 0
  assert sources.load_prepared(str(tmp_path / "u"), 6, 1).labels is None


def test_prepare_refuses_to_overwrite_and_names_bad_inputs(prepared, tmp_path, capsys):
  src, out = prepared
  with pytest.raises(UserError, match=r"OUT=.*is not empty.*--overwrite"):
    prepare.prepare(src, out, size=8)
  again = str(tmp_path / "again")
  os.makedirs(again)
  open(os.path.join(again, "keep.txt"), "w").close()
  m = prepare.prepare(src, again, size=4, channels=1, overwrite=True)
  assert sorted(os.listdir(again)) == sorted(m["records"] + ["manifest.json"])
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p or ".old-" in p]
  cases = [(dict(size=2), r"--size=2"), (dict(channels=2), r"--channels=2"),
           (dict(shards=0), r"--shards=0"),
           (dict(labels=str(tmp_path / "none.json")), r"--labels=.*none.json")]
  for kwargs, pattern in cases:
    with pytest.raises(UserError, match=pattern):
      prepare.prepare(src, str(tmp_path / "x"), **kwargs)
  with pytest.raises(UserFileError, match=r"SRC=.*missing.*does not exist"):
    prepare.prepare(str(tmp_path / "missing"), str(tmp_path / "x"))
  partial = tmp_path / "partial.json"
  partial.write_text(json.dumps({"labels": [["cat/img000.png", 1]]}))
  with pytest.raises(UserError, match=r"--labels=.*no label for image 'cat/img001.png'"):
    prepare.prepare(src, str(tmp_path / "x"), labels=str(partial))
  assert prepare.main([src, out]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: OUT=") and err.count("\n") == 1


def _steps(batches, steps):
  return [batches.for_step(s) for s in steps]


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert sorted(x) == sorted(y)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_streamed_batches_equal_in_memory_batches_and_resume(prepared):
  _, out = prepared
  mem = pipeline.Batches(sources.load_prepared(out, 8, 3), 8, 2, seed=3)
  data = stream.prepared_data(out, 8, 3)
  streamed = stream.StreamBatches(data, 8, 2, seed=3, workers=1)   # a decoding process
  try:
    got = _steps(streamed, range(6))     # 12 batches: 2.4 epochs of 5 batches
  finally:
    streamed.close()
  want = _steps(mem, range(6))
  assert got[0]["images"].shape == (2, 8, 8, 8, 3) and got[0]["labels"].shape == (2, 8)
  _assert_same(got, want)
  resumed = stream.StreamBatches(data, 8, 2, seed=3, workers=0)
  _assert_same(_steps(resumed, [4, 5]), want[4:])     # a fresh iterator positioned at 4
  _assert_same(_steps(resumed, [1]), want[1:2])       # a jump back restarts it too
  resumed.close()
  assert streamed.epoch_of_step(5) == mem.epoch_of_step(5) == 2.0


def test_two_processes_read_disjoint_shards_that_cover_the_data(prepared):
  _, out = prepared
  whole = sources.load_prepared(out, 8, 3)
  parts = [stream.prepared_data(out, 8, 3, process_index=i, process_count=2) for i in (0, 1)]
  assert [(p.spec.offset, p.count) for p in parts] == [(0, 20), (20, 20)]
  seen = []
  for i, part in enumerate(parts):
    src = part.spec.open()
    images, _ = part.spec.examples(src, range(part.count))
    seen.append(images)
    mem = pipeline.Batches(sources.shard(whole, i, 2), 8, 1, 0, i, 2)
    streamed = stream.StreamBatches(part, 8, 1, 0, i, 2, workers=0)
    _assert_same(_steps(streamed, range(3)), _steps(mem, range(3)))
    streamed.close()
  np.testing.assert_array_equal(np.concatenate(seen), whole.images)


def test_auto_streams_above_max_host_memory_and_says_so(prepared):
  src, out = prepared
  c = tiny_config(**{"data.folder": out, "data.image_size": 8, "data.channels": 3,
                     "data.max_examples": 0}).data
  assert choose.plan(c) == ("memory", "")        # 40 x 8 x 8 x 3 = 7680 bytes < 8GB
  c.max_host_memory = "7KB"
  said = []
  data = choose.open_data(c, say=said.append)
  assert isinstance(data, stream.StreamedData) and data.count == 40
  assert len(said) == 1 and "7.7 KB" in said[0] and "max_host_memory='7KB'" in said[0]
  c.max_host_memory = "7680"
  assert isinstance(choose.open_data(c), sources.ImageData)
  c.source = "stream"
  assert choose.plan(c)[0] == "stream"
  c.folder = src
  with pytest.raises(UserError, match=r"source='stream'.*plain image folder.*jaxgan.data.prepare"):
    choose.plan(c)
  c.source, c.max_host_memory = "auto", "1KB"
  with pytest.raises(UserError, match=r"more than config.data.max_host_memory='1KB'"):
    choose.plan(c)
  assert choose.parse_bytes("2GiB") == 2 ** 31 and choose.parse_bytes("1.5MB") == 1_500_000
  assert "must be a size" in choose.bytes_problem("lots")


def test_config_rejects_bad_source_values():
  from jaxgan.run import validate  # pylint: disable=g-import-not-at-top
  for overrides, pattern in [({"data.max_host_memory": "8 parsecs"}, r"max_host_memory="),
                             ({"data.source": "disk"}, r"config.data.source='disk'"),
                             ({"data.source": "stream"}, r"embedded Fashion-MNIST")]:
    with pytest.raises(UserError, match=pattern):
      validate.validate(tiny_config(**overrides))


def _params_equal(a, b):
  chex.assert_trees_all_equal(a, b)


def test_training_on_streamed_data_resumes_bit_identically(prepared, tmp_path):
  from jaxgan.run import train  # pylint: disable=g-import-not-at-top
  _, out = prepared
  cfg = lambda steps, source: tiny_config(**{
      "data.folder": out, "data.image_size": 8, "data.channels": 3, "data.max_examples": 0,
      "data.batch_size": 8, "data.source": source, "train.steps": steps,
      "train.n_critic": 2, "train.sample_every": 0})
  full = train.train_and_evaluate(cfg(6, "stream"), str(tmp_path / "a"))
  train.train_and_evaluate(cfg(3, "stream"), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(cfg(6, "stream"), str(tmp_path / "b"))
  assert int(resumed.step) == 6
  _params_equal(full.g.params, resumed.g.params)
  _params_equal(full.d, resumed.d)


def test_training_paths_never_import_tensorflow(prepared, tmp_path):
  """Embedded data and a streamed prepared directory train without TensorFlow."""
  _, out = prepared
  code = f"""
import sys
from jaxgan.run import train
from tests.conftest import tiny_config
train.train_and_evaluate(tiny_config(**{{"train.steps": 2}}), {str(tmp_path / 'e')!r})
train.train_and_evaluate(tiny_config(**{{"train.steps": 2, "data.folder": {out!r},
    "data.image_size": 8, "data.channels": 3, "data.max_examples": 0, "data.batch_size": 8,
    "data.max_host_memory": "1KB"}}), {str(tmp_path / 'p')!r})
print("tensorflow" in sys.modules, "tensorflow_datasets" in sys.modules)
"""
  env = {**os.environ, "PYTHONPATH": REPO}
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "Streaming the data from disk" in done.stdout
  assert done.stdout.strip().splitlines()[-1] == "False False"


def test_bench_images_per_s_counts_decoded_images(prepared):
  _, out = prepared
  rate = stream.bench_images_per_s(out, batch_size=8, seconds=0.3, workers=0)
  assert 100 < rate < 1e7


def test_tfds_streams_when_array_record_and_says_how_to_convert_otherwise(monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  c = tiny_config(**{"data.name": "mnist", "data.source": "stream", "data.image_size": 8,
                     "data.batch_size": 4, "data.max_examples": 0}).data
  with tfds.testing.mock_data(num_examples=16):
    with pytest.raises(UserError, match=r"'mnist' is stored as tfrecord.*"
                                        r"tfds build mnist --file_format=array_record"):
      choose.plan(c)
    monkeypatch.setattr(choose, "_can_stream", lambda *a: True)   # the mock reads as one
    data = choose.open_data(c)
    assert (data.count, data.num_classes, data.spec.kind) == (16, 10, "tfds")
    batches = stream.StreamBatches(data, 4, 2, seed=0, workers=0)  # mocks live here only
    out = batches.for_step(1)
    batches.close()
  assert out["images"].shape == (2, 4, 8, 8, 1) and out["images"].dtype == np.uint8
  assert out["labels"].shape == (2, 4) and out["labels"].dtype == np.int32


def test_mode_eval_on_a_prepared_directory_reads_only_the_reference(prepared, tmp_path,
                                                                     monkeypatch, capsys):
  """--mode eval reads eval.max_real_features images spread over a prepared directory,
  never decoding all of it (issue 35); with at least as many as the data holds, they are
  exactly the in-memory data."""
  from jaxgan.run import restore, train  # pylint: disable=g-import-not-at-top
  _, out = prepared
  whole = sources.load_prepared(out, 8, 3)
  c = tiny_config(**{"data.folder": out, "data.image_size": 8, "data.channels": 3,
                     "data.max_examples": 0, "data.batch_size": 8, "data.source": "memory",
                     "train.steps": 2, "train.sample_every": 0, "train.tensorboard": False})
  all_of_it = choose.open_for_eval(c.data, 100, say=lambda _: None)
  np.testing.assert_array_equal(all_of_it.images, whole.images)
  np.testing.assert_array_equal(all_of_it.labels, whole.labels)
  assert all_of_it.name == whole.name and all_of_it.class_names == whole.class_names
  wd = str(tmp_path / "run")
  train.train_and_evaluate(c, wd)           # trained in memory; evaluation streams anyway
  decoded = []
  real_decode = records.decode
  monkeypatch.setattr(records, "decode", lambda r, ch: (decoded.append(1), real_decode(r, ch))[1])
  def no_whole(*a, **k):
    raise AssertionError("--mode eval decoded the whole prepared directory")
  monkeypatch.setattr(sources, "load_prepared", no_whole)
  capsys.readouterr()
  result = restore.evaluate_checkpoint(
      wd, num_samples=32, metrics="fd,kid,classes",
      overrides=[("eval.max_real_features", "16"), ("eval.classifier_steps", "10"),
                 ("eval.cache_dir", str(tmp_path / "cache")),
                 ("eval.memorization_samples", "4")])
  assert len(decoded) == 16                 # of 40: the reference sample only
  assert "compares with 16 of the 40 images of prepared:out" in capsys.readouterr().out
  assert result["step"] == 2 and result["dataset"] == "prepared:out"
  assert np.isfinite(result["fd"]) and "kid_mean" in result and "classes_covered" in result
  assert os.path.exists(os.path.join(wd, "eval.json"))


def test_mode_eval_on_an_array_record_tfds_split_reads_only_the_reference(monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  c = tiny_config(**{"data.name": "mnist", "data.source": "stream", "data.image_size": 8,
                     "data.batch_size": 4, "data.max_examples": 0}).data
  monkeypatch.setattr(choose, "_can_stream", lambda *a: True)   # the mock reads as one
  with tfds.testing.mock_data(num_examples=16):
    ref = choose.open_for_eval(c, 5, say=lambda _: None)
  assert ref.images.shape == (5, 8, 8, 1) and ref.labels.shape == (5,)
  assert ref.num_classes == 10 and ref.name == "mnist"


def test_batch_reader_opens_its_source_once_when_threads_race():
  """Grain calls the reader from two threads at once (workers=0); opening a TFDS source
  concurrently raced under tfds.testing.mock_data (CI failure of 2026-12-07)."""
  import threading  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  opened = []

  class SlowSpec:
    labelled = False

    def open(self):
      opened.append(1)
      time.sleep(0.05)
      return "source"

    def batch(self, source, idx):
      assert source == "source"
      return {"images": np.zeros((len(idx), 2, 2, 1), np.uint8)}

  class Sampler:
    def indices(self, b):
      return np.arange(2) + b

  reader = stream.BatchReader(SlowSpec(), Sampler())
  threads = [threading.Thread(target=reader, args=(b,)) for b in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert len(opened) == 1
