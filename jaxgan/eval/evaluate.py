"""Evaluating a generator: feature extractors, cached real statistics, all metrics, the
memorisation check. Used every `config.eval.every` steps during training and by
`launch.py --mode eval`."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

import numpy as np

from jaxgan.data.sources import ImageData
from jaxgan.eval import metrics as metrics_lib
from jaxgan.eval import classifier as clf
from jaxgan.eval import inception_eval
from jaxgan.eval.features import (Extractor, RealStats, classifier_extractor,  # noqa: F401
                                  from_flax, real_stats, resized)
from jaxgan.eval import stats as M
from jaxgan.eval.visualize import grid, save_png
from jaxgan.base.errors import UserError


def memorization(fake: np.ndarray, train_images: np.ndarray, heldout: Optional[np.ndarray],
                 png_path: Optional[str] = None, k: int = 16) -> Dict[str, object]:
  """Nearest training image (mean L1) of k generated samples, beside the same distance for
  k held-out real images (or, without a held-out set, for k training images to their
  nearest *other* training image). Generated samples much closer to the training set than
  held-out real images are are copies. Saves a PNG of (sample, neighbour) pairs."""
  k = min(k, len(fake))
  idx, d_fake = M.nearest_l1(fake[:k], train_images)
  if heldout is not None:
    _, d_real = M.nearest_l1(heldout[:k], train_images)
    baseline = "held-out real images"
  else:
    d_real = np.empty(k)
    for i in range(k):
      others = np.concatenate([train_images[:i], train_images[i + 1:]])
      d_real[i] = M.nearest_l1(train_images[i:i + 1], others)[1][0]
    baseline = "training images (leave-one-out)"
  if png_path:
    pairs = np.stack([fake[:k], train_images[idx]], axis=1).reshape(2 * k, *fake.shape[1:])
    save_png(grid(pairs, ncol=2 * min(k, 8)), png_path,
             scale=max(1, 112 // fake.shape[1]))
  return {"memorization_samples": k, "nn_l1_generated": d_fake.tolist(),
          "nn_l1_real": d_real.tolist(), "nn_l1_generated_mean": float(d_fake.mean()),
          "nn_l1_real_mean": float(d_real.mean()), "nn_l1_generated_min": float(d_fake.min()),
          "nn_l1_baseline": baseline, "nn_train_index": idx.tolist(),
          "exact_copies": int(np.sum(d_fake == 0))}


def write_json(obj, path: str) -> str:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2)
  os.replace(path + ".tmp", path)
  return path


def load_heldout(data_cfg, test_split: str, log=print) -> Optional[ImageData]:
  """The dataset's held-out split (TFDS only); None for the embedded data and folders."""
  if data_cfg.folder or not data_cfg.name or not test_split or test_split == data_cfg.split:
    return None
  from jaxgan.data import sources  # pylint: disable=g-import-not-at-top
  try:
    return sources.load_tfds(data_cfg.name, test_split, data_cfg.data_dir, data_cfg.image_size,
                             data_cfg.channels, image_key=data_cfg.image_key,
                             label_key=data_cfg.label_key)
  except (FileNotFoundError, ValueError) as e:
    log(f"No held-out split {test_split!r} for {data_cfg.name} ({e}); holding out 20% of "
        "the training data for the classifier instead.")
    return None


def at_eval_size(config, data: ImageData, heldout: Optional[ImageData], log=print):
  """The reference (whole training split) and held-out data at `config.eval.image_size`,
  loaded from the source at that size (not resampled twice); unchanged when it is 0 or the
  training size."""
  size = config.eval.image_size
  if not size or (size, size) == tuple(data.image_shape[:2]):
    return data, heldout
  import copy  # pylint: disable=g-import-not-at-top
  from jaxgan.data import sources  # pylint: disable=g-import-not-at-top
  cfg = copy.deepcopy(config.data)
  cfg.image_size, cfg.subset = size, 0
  log(f"Evaluating at {size}x{size} (config.eval.image_size): the reference data is loaded "
      "at that size and generated images are resized to it.")
  held = load_heldout(cfg, config.eval.test_split, log) if heldout is not None else None
  return sources.load(cfg), held


def maybe_inception(config, data, heldout, names, log=print):
  """The Inception extractor and its reference statistics, built only when one of `names`
  needs them (an InceptionEval, or None)."""
  if any(metrics_lib.METRICS.get(n).needs == "inception" for n in names):
    return inception_eval.build(config, data, heldout, log)
  return None


class Evaluator:
  """Everything needed to score a generator on one dataset, built once per run."""

  def __init__(self, config, data: ImageData, log=print, metrics: str = ""):
    """`metrics`: the names this evaluator will compute (default config.eval.metrics);
    it builds only the extractors they need (the Inception one at once, so a missing
    weights file stops before anything is generated)."""
    from jaxgan import data as data_lib  # pylint: disable=g-import-not-at-top
    if data_lib.latent_manifest(config.data) is not None:   # a latent run: its images
      import copy  # pylint: disable=g-import-not-at-top
      config = copy.deepcopy(config)
      config.data = data_lib.image_config(config.data)
    self.config, self.data = config, data
    # a run on a data.subset is measured against the whole split, as Karras et al. 2020
    # do ("all available training images, regardless of the subset used for training")
    reference = data.whole if data.whole is not None else data
    ev = config.eval
    self.heldout = load_heldout(config.data, ev.test_split, log)
    self.names = metrics_lib.parse(metrics or ev.metrics, inception=bool(ev.inception_weights))
    self.inception = maybe_inception(config, reference, self.heldout, self.names,
                                                log)
    self.extractor = self.real = None
    if any(metrics_lib.METRICS.get(n).needs != "inception" for n in self.names):
      reference, held = at_eval_size(config, reference, self.heldout, log)
      self.extractor = self._classifier(reference, held, log)
      if ev.image_size:
        self.extractor = resized(self.extractor, ev.image_size)
      self.real = real_stats(reference, self.extractor, ev.cache_dir, ev.max_real_features)

  def _classifier(self, data: ImageData, heldout: Optional[ImageData], log) -> Extractor:
    if data.labels is None or data.num_classes < 2:
      raise UserError(
          f"{data.name} has no labels, so the in-domain classifier cannot be trained; set "
          "config.eval.every=0, evaluate with the Inception metrics only "
          "(fid_inception,is,kid_inception,pr_inception) or with another extractor "
          "(jaxgan.eval.from_flax).")
    if heldout is not None and heldout.labels is not None:
      train, test = data, heldout
    else:
      train, test = clf.split_for_classifier(data)
    return classifier_extractor(train, test, self.config.eval, log)

  def __call__(self, images: np.ndarray, *, labels: Optional[np.ndarray] = None,
               metrics: str = "", seed: int = 0, gan=None, state=None, key=None
               ) -> Dict[str, object]:
    """The named metrics (default: those the evaluator was built for) of uint8 generated
    images; `gan`/`state`/`key` serve the metrics that need G itself."""
    names = (metrics_lib.parse(metrics, inception=self.inception is not None) if metrics
             else self.names)
    inputs = metrics_lib.Inputs(images, labels, self.extractor, self.real, gan=gan,
                                state=state, key=key, seed=seed, inception=self.inception)
    out = metrics_lib.compute(names, inputs)
    if self.extractor is not None:
      out["classifier_test_accuracy"] = self.extractor.info.get("test_accuracy")
    if self.inception is not None and any(
        metrics_lib.METRICS.get(n).needs == "inception" for n in names):
      out["inception_protocol"] = dict(self.inception.protocol,
                                       num_generated=int(len(images)))
    return out

  def evaluate_generator(self, gan, state, num_samples: int, key, metrics: str = "",
                         seed: int = 0) -> Dict[str, object]:
    """Samples `num_samples` images (a conditional model: every class in turn) and scores
    them."""
    from jaxgan.eval import sampling  # pylint: disable=g-import-not-at-top
    labels = sampling.make_labels(gan.num_classes, num_samples)
    images = sampling.generate(gan, state, num_samples, key, labels)
    return self(images, labels=labels, metrics=metrics, seed=seed, gan=gan, state=state,
                key=key)

  @staticmethod
  def summary(result: Dict[str, object]) -> str:
    """One line of whatever scalar metrics were computed."""
    skip = {"num_samples", "classifier_test_accuracy", "kid_std"}
    return ", ".join(f"{k} {v:.4g}" for k, v in result.items()
                     if isinstance(v, (int, float)) and k not in skip)

  def memorization(self, images: np.ndarray, png_path: Optional[str]) -> Dict[str, object]:
    held = self.heldout if self.heldout is not None else self.data.heldout  # subset's rest
    held = None if held is None else held.images
    return memorization(images, self.data.images, held, png_path,
                        k=self.config.eval.memorization_samples)
