"""Where a run's numbers and pictures go: metrics.jsonl (always) and TensorBoard event
files written through TensorBoard's own summary API (tf.summary), from process 0 only."""
from __future__ import annotations

import json
import os
from typing import Dict

import numpy as np


class MetricWriter:
  def __init__(self, workdir: str, *, tensorboard: bool = True, active: bool = True):
    self.active = active
    self.jsonl = os.path.join(workdir, "metrics.jsonl")
    self.tb = None
    if active and tensorboard:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._tf = tf
      self.tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def row(self, step: int, values: Dict[str, object]):
    """One line of metrics.jsonl, and its numeric scalars in TensorBoard."""
    if not self.active:
      return
    with open(self.jsonl, "a") as f:
      f.write(json.dumps({"step": step, **values}) + "\n")
    if self.tb is not None:
      with self.tb.as_default(step=step):
        for k, v in values.items():
          if isinstance(v, (int, float)) and not isinstance(v, bool):
            self._tf.summary.scalar(k, float(v))

  def histograms(self, step: int, arrays: Dict[str, np.ndarray]):
    if self.tb is not None:
      with self.tb.as_default(step=step):
        for k, v in arrays.items():
          self._tf.summary.histogram(k, np.asarray(v, np.float32))

  def image(self, step: int, name: str, image: np.ndarray):
    """A uint8 H x W x C image (a sample grid)."""
    if self.tb is not None:
      img = np.asarray(image)
      if img.ndim == 2:
        img = img[..., None]
      with self.tb.as_default(step=step):
        self._tf.summary.image(name, img[None])

  def close(self):
    if self.tb is not None:
      self.tb.close()
      self.tb = None


def read_tensorboard(logdir: str) -> Dict[str, list]:
  """{tag: [(step, kind)]} read back with TensorBoard's own event reader."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  acc = event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0, "images": 0,
                                                                  "histograms": 0})
  acc.Reload()
  out = {}
  for tag in acc.Tags().get("tensors", []):
    out[tag] = [(e.step, "tensor") for e in acc.Tensors(tag)]
  return out
