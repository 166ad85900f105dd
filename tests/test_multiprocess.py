"""Multi-host training through JAX's own distributed runtime, as two local processes."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow_datasets as tfds

from jaxgan.data import pipeline, sources
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_train_to_identical_parameters(tmp_path):
  port = free_port()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  procs = [subprocess.Popen([sys.executable, "tests/multiprocess_worker.py", str(port), str(i),
                             str(tmp_path / "run")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    outs.append(json.loads(out.strip().splitlines()[-1]))
  a, b = sorted(outs, key=lambda o: o["process"])
  assert a["processes"] == b["processes"] == 2 and a["devices"] == 2
  assert a["step"] == b["step"] == 4 and a["finite"]
  assert a["digest"] == b["digest"]                          # replicas agree bit for bit
  assert a["shard_size"] == b["shard_size"] == 5000          # each read half of the data
  assert a["shard_first_label_sum"] != b["shard_first_label_sum"]
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["2", "4"]
  assert os.path.exists(tmp_path / "run" / "metrics.jsonl")


def test_process_shards_are_disjoint_and_cover_the_split(tmp_path):
  data = sources.load_embedded(28, 1, max_examples=1001)
  parts = [sources.shard(data, i, 3) for i in range(3)]
  assert sum(len(p.images) for p in parts) == 1001
  np.testing.assert_array_equal(np.concatenate([p.images for p in parts]), data.images)
  # A real prepared TFDS dataset (TFDS's offline dummy_mnist, 20 training images).
  tfds.testing.DummyMnist(data_dir=str(tmp_path)).download_and_prepare()
  cfg = tiny_config(**{"data.name": "dummy_mnist", "data.data_dir": str(tmp_path),
                       "data.max_examples": 0, "data.batch_size": 6}).data
  full = sources.load(cfg)
  shards = [sources.load(cfg, i, 3) for i in range(3)]
  assert sum(len(s.images) for s in shards) == len(full.images) == 20
  np.testing.assert_array_equal(np.concatenate([s.images for s in shards]), full.images)


def test_process_batch_streams_differ_and_one_process_is_the_plain_stream():
  data = sources.load_embedded(28, 1, max_examples=200)
  one = pipeline.Batches(data, 20, 1, seed=0)
  alone = pipeline.Batches(data, 20, 1, seed=0, process_index=0, process_count=1)
  np.testing.assert_array_equal(one.for_step(3)["images"], alone.for_step(3)["images"])
  p0 = pipeline.Batches(sources.shard(data, 0, 2), 20, 1, 0, 0, 2).for_step(0)
  p1 = pipeline.Batches(sources.shard(data, 1, 2), 20, 1, 0, 1, 2).for_step(0)
  assert p0["images"].shape == (1, 10, 28, 28, 1) and not np.array_equal(p0["images"],
                                                                         p1["images"])
