"""Streaming batches for datasets larger than host memory.

`StreamBatches` has `Batches`' interface (`for_step`, `epoch_of_step`, `sampler`) and draws
its indices from the same `EpochSampler`, but reads the examples of each batch from disk
when it is needed instead of indexing a decoded array: random access over the ArrayRecord
files of a prepared directory (jaxgan/data/records.py) or over a TFDS dataset stored as
array_record (`tfds.data_source`), through Grain. Batch b is still a pure function of
(seed, b), and PNG is lossless, so the streamed batches are bit-identical to the in-memory
batches of the same prepared data, and a run resumed at step s reads exactly the batches an
uninterrupted run reads (a fresh iterator positioned at batch s * n_critic).

Decoding (PNG, resize of TFDS images) happens in Grain worker processes that run ahead
of the train step (`mp_prefetch`): worker w produces batches w, w + W, ... and the
iterator returns them in order (on machines with fewer than 3 cores, in threads of this
process instead: see `default_workers`). Each process reads only its contiguous shard of the
records, the split `sources.shard` makes in memory.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from jaxgan.data import records
from jaxgan.data.pipeline import EpochSampler
from jaxgan.data.resize import preprocess
from jaxgan.data.sources import ImageData
from jaxgan.base import sizes
from jaxgan.base.errors import UserError

BUFFER_PER_WORKER = 2   # batches each worker decodes ahead of the step


def default_workers() -> int:
  """Decoding processes: all cores this process may use but the one running the training
  loop, at most 8; with fewer than 3 cores none (0: decoding threads in this process).
  Measured on 2 cores (30,000 64x64 PNGs, batch 128): 1 process 6,400 images/s, 2
  processes 1,500 (they and the loop compete for the cores), 2 threads 10,300."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return 0 if (cores or 1) < 3 else min(8, cores - 1)


@dataclasses.dataclass(frozen=True)
class Spec:
  """Where the examples of a streamed dataset are and how to decode them (picklable: it
  travels to the worker processes, which open their own readers)."""
  kind: str                      # "prepared" | "latent" | "tfds"
  image_size: Any               # one side or (height, width) (jaxgan/base/sizes.py)
  channels: int
  labelled: bool
  paths: Tuple[str, ...] = ()    # prepared: the record files, in order
  # tfds: name, split, data_dir, image_key, label_key
  tfds: Tuple[str, str, str, str, str] = ("", "", "", "", "")
  offset: int = 0                # first record of this process's shard
  latent_shape: Tuple[int, ...] = ()   # latent: [h, w, c] of each mean and std

  def open(self):
    """A random-access source of this dataset's examples."""
    if self.kind in ("prepared", "latent"):
      import grain  # pylint: disable=g-import-not-at-top
      return grain.sources.ArrayRecordDataSource(list(self.paths))
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    name, split, data_dir = self.tfds[:3]
    return tfds.data_source(name, split=split, data_dir=data_dir or None)

  def batch(self, source, indices: Sequence[int]) -> dict:
    """The batch dict of the examples at shard positions `indices` (as Batches.batch)."""
    if self.kind == "latent":
      idx = [self.offset + int(i) for i in indices]
      means, stds, labels = records.decode_latents(source.__getitems__(idx), self.latent_shape)
      out = {"images": means, "stds": stds, "labels": labels}
    else:
      images, labels = self.examples(source, indices)
      out = {"images": images, "labels": labels}
    if not self.labelled:
      del out["labels"]
    return out

  def examples(self, source, indices: Sequence[int]):
    """(uint8 [N, S, S, C], int32 [N]) of the examples at shard positions `indices`."""
    if self.kind == "latent":
      raise UserError("A latent dataset holds no images: evaluation reads the images it was "
                      "encoded from (its manifest's image_source).")
    idx = [self.offset + int(i) for i in indices]
    if self.kind == "prepared":
      return records.decode_many(source.__getitems__(idx), self.channels)
    image_key, label_key = self.tfds[3:]
    images, labels = [], []
    for i in idx:
      ex = source[i]
      images.append(preprocess(np.asarray(ex[image_key])[None], self.image_size,
                               self.channels)[0])
      if self.labelled:
        for part in label_key.split("/"):
          ex = ex[part]
        labels.append(int(ex))
    return np.stack(images), np.array(labels or [-1] * len(idx), np.int32)


@dataclasses.dataclass
class StreamedData:
  """A dataset read batch by batch: what the run needs to know of it, without its images
  (`count` is this process's shard)."""
  name: str
  num_classes: int
  class_names: Sequence[str]
  image_shape: Tuple[int, int, int]
  count: int
  spec: Spec
  heldout: Optional[ImageData] = None   # no held-out images: the D probe is off
  whole: Optional[ImageData] = None
  latent: Optional[dict] = None         # a latent dataset: as ImageData.latent

  def reference(self, n: int) -> ImageData:
    """n examples spread evenly over the shard, decoded: the real images of evaluation
    during training (its feature statistics keep eval.max_real_features anyway)."""
    idx = np.unique(np.linspace(0, self.count - 1, min(n, self.count)).astype(np.int64))
    source = self.spec.open()
    parts = [self.spec.examples(source, idx[s:s + 1024]) for s in range(0, len(idx), 1024)]
    labels = np.concatenate([p[1] for p in parts]) if self.spec.labelled else None
    return ImageData(np.concatenate([p[0] for p in parts]), labels, self.num_classes,
                     self.name, self.class_names)


class BatchReader:
  """The function Grain maps over batch numbers in the worker processes: batch b's
  examples, read and decoded. Holds the sampler, so a worker needs nothing from the
  parent but this object. The source is opened once per process under a lock: with
  workers=0 Grain calls it from several threads at once, and opening a TFDS source
  concurrently races (two opens, and under tfds.testing.mock_data a patched class
  seen half-patched by the other thread)."""

  def __init__(self, spec: Spec, sampler: EpochSampler):
    self.spec, self.sampler, self._source = spec, sampler, None
    self._lock = threading.Lock()

  def __getstate__(self):
    return {"spec": self.spec, "sampler": self.sampler, "_source": None}

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def _opened(self):
    with self._lock:
      if self._source is None:
        self._source = self.spec.open()
      return self._source

  def __call__(self, b: int) -> dict:
    if self._source is None:
      self._opened()
    return self.spec.batch(self._source, self.sampler.indices(b))


def _grain_flags_parsed():
  """Grain reads absl flags in its workers; outside an absl app (tests, notebooks,
  benchmarks) they are not parsed yet, and their defaults are what we want."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def batch_iterator(reader: BatchReader, first: int, workers: int):
  """Batches first, first + 1, ... decoded by `workers` processes (0: a thread pool in
  this process), each running BUFFER_PER_WORKER batches ahead."""
  import grain  # pylint: disable=g-import-not-at-top
  _grain_flags_parsed()
  ds = grain.MapDataset.range(first, 1 << 62).map(reader)
  if workers:
    ds = ds.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(
        num_workers=workers, per_worker_buffer_size=BUFFER_PER_WORKER))
  else:
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
  return iter(ds)


class StreamBatches:
  """`Batches` for a `StreamedData`: for_step(s) -> {"images": uint8[k, B, H, W, C],
  "labels": int32[k, B]} (labels when labelled), k = n_critic, read ahead by workers.

  Steps asked in order continue one iterator; any other step (the first, a resume, a
  jump) starts a fresh one at that step's first batch, which gives the same batches."""

  def __init__(self, data: StreamedData, batch_size: int, n_critic: int, seed: int,
               process_index: int = 0, process_count: int = 1,
               workers: Optional[int] = None):
    if batch_size % process_count:
      raise UserError(f"config.data.batch_size={batch_size} must be divisible by the "
                      f"{process_count} processes.")
    self.data, self.n_critic = data, n_critic
    stream = process_index + 1 if process_count > 1 else 0
    self.sampler = EpochSampler(data.count, batch_size // process_count, seed, stream)
    self.workers = default_workers() if workers is None else workers
    self._reader = BatchReader(data.spec, self.sampler)
    self._it, self._next = None, None

  def _take(self, b: int) -> dict:
    if self._next != b:
      self.close()
      self._it = batch_iterator(self._reader, b, self.workers)
    out = next(self._it)
    self._next = b + 1
    return {k: np.array(v) for k, v in out.items()}   # out of Grain's shared memory

  def for_step(self, step: int) -> dict:
    parts = [self._take(step * self.n_critic + i) for i in range(self.n_critic)]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

  def epoch_of_step(self, step: int) -> float:
    return step * self.n_critic / self.sampler.batches_per_epoch

  def close(self):
    """Stops the worker processes (a later for_step starts new ones)."""
    if self._it is not None:
      self._it.close()
    self._it, self._next = None, None


def prepared_data(folder: str, image_size, channels: int, max_examples: int = 0,
                  process_index: int = 0, process_count: int = 1,
                  labelled: bool = True) -> StreamedData:
  """A prepared directory as streamed data: this process's contiguous shard of it."""
  m = records.read_manifest(folder)
  records.check_shape(m, folder, image_size, channels)
  n = m["count"] if not max_examples else min(max_examples, m["count"])
  lo, hi = n * process_index // process_count, n * (process_index + 1) // process_count
  labelled = labelled and m["num_classes"] > 0
  latent = records.is_latent(m)
  spec = Spec("latent" if latent else "prepared", image_size, channels, labelled,
              paths=tuple(records.record_paths(folder, m)), offset=lo,
              latent_shape=tuple(m["latent_shape"]) if latent else ())
  shape = spec.latent_shape if latent else (*sizes.hw(image_size), channels)
  return StreamedData(records.dataset_name(folder), m["num_classes"] if labelled else 0,
                      tuple(m["class_names"]) if labelled else (), shape, hi - lo, spec,
                      latent=records.latent_description(m) if latent else None)


def bench_images_per_s(prepared_dir: str, batch_size: int = 128, seconds: float = 10.0,
                       workers: Optional[int] = None) -> float:
  """Images per second delivered as host uint8 batches by the streaming reader of a
  prepared directory, decoding included (worker start-up and the first batch excluded)."""
  m = records.read_manifest(prepared_dir)
  data = prepared_data(prepared_dir, m["image_size"], m["channels"])
  batches = StreamBatches(data, batch_size, 1, seed=0, workers=workers)
  try:
    batches.for_step(0)
    t0, step = time.perf_counter(), 1
    while time.perf_counter() - t0 < seconds:
      batches.for_step(step)
      step += 1
    return (step - 1) * batch_size / (time.perf_counter() - t0)
  finally:
    batches.close()
