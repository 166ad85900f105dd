"""Where a run's numbers and pictures go: metrics.jsonl (always) and TensorBoard event
files, from process 0 only.

The event files are written with tensorboardX, which needs only numpy and protobuf: the
training path imports no TensorFlow, so a GPU/TPU environment can run without it (TF is
needed for TFDS preparation only). TensorBoard reads them as it reads its own.
"""
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
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=30)

  def row(self, step: int, values: Dict[str, object]):
    """One line of metrics.jsonl, and its numeric scalars in TensorBoard."""
    if not self.active:
      return
    with open(self.jsonl, "a") as f:
      f.write(json.dumps({"step": step, **values}) + "\n")
    if self.tb is not None:
      for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
          self.tb.add_scalar(k, float(v), step)

  def histograms(self, step: int, arrays: Dict[str, np.ndarray]):
    if self.tb is not None:
      for k, v in arrays.items():
        self.tb.add_histogram(k, np.asarray(v, np.float32).ravel(), step)

  def image(self, step: int, name: str, image: np.ndarray):
    """A uint8 H x W x C image (a sample grid)."""
    if self.tb is not None:
      img = np.asarray(image)
      if img.ndim == 2:
        img = img[..., None]
      self.tb.add_image(name, img, step, dataformats="HWC")

  def close(self):
    if self.tb is not None:
      self.tb.close()
      self.tb = None


def read_tensorboard(logdir: str) -> Dict[str, list]:
  """{tag: [(step, kind)]} read back with TensorBoard's own event reader."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  guidance = {"tensors": 0, "images": 0, "scalars": 0, "histograms": 0}  # 0: keep all
  acc = event_accumulator.EventAccumulator(logdir, size_guidance=guidance)
  acc.Reload()
  out = {}
  for kind in ("scalars", "images", "histograms", "tensors"):
    for tag in acc.Tags().get(kind, []):
      events = getattr(acc, kind[0].upper() + kind[1:])(tag)
      out[tag] = [(e.step, kind) for e in events]
  return out
