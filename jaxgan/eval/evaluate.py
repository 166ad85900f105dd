"""Evaluating a generator: feature extractors, cached real statistics, all metrics, the
memorisation check. Used every `config.eval.every` steps during training and by
`launch.py --mode eval`."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Callable, Dict, Optional

import numpy as np

from jaxgan.data.sources import ImageData
from jaxgan import metrics as metrics_lib
from jaxgan.eval import classifier as clf
from jaxgan.eval import inception_eval
from jaxgan.eval import metrics as M
from jaxgan.visualize import grid, save_png
from jaxgan.errors import UserError


@dataclasses.dataclass
class Extractor:
  """Any feature extractor: uint8 images [N,H,W,C] -> float features [N, D]; optionally
  class predictions [N] for mode coverage."""
  name: str
  features: Callable[[np.ndarray], np.ndarray]
  predict: Optional[Callable[[np.ndarray], np.ndarray]] = None
  num_classes: int = 0
  info: dict = dataclasses.field(default_factory=dict)
  # float images in [-1, 1] -> features, for metrics that look at small image changes
  features_float: Optional[Callable[[np.ndarray], np.ndarray]] = None


def from_flax(name: str, graphdef, params, *, feature_method: str = "features",
              predict_method: Optional[str] = "__call__", num_classes: int = 0,
              batch_size: int = 500) -> Extractor:
  """Wraps a Flax NNX module and its weights (e.g. an Inception port) as an Extractor.

  The module receives images scaled to [-1, 1]; `feature_method` names the method that
  returns features, `predict_method` the one that returns class logits (or None)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  def batched(method, scale: bool = True):
    fn = jax.jit(lambda p, x: getattr(nnx.merge(graphdef, p), method)(
        jnp.asarray(x, jnp.float32) / 127.5 - 1.0 if scale else jnp.asarray(x, jnp.float32)))
    return lambda imgs: np.concatenate([np.asarray(fn(params, imgs[i:i + batch_size]),
                                                   np.float64)
                                        for i in range(0, len(imgs), batch_size)])
  predict = None
  if predict_method:
    logits = batched(predict_method)
    predict = lambda imgs: logits(imgs).argmax(-1)
  return Extractor(name, batched(feature_method), predict, num_classes,
                   features_float=batched(feature_method, scale=False))


def classifier_extractor(train: ImageData, test: ImageData, eval_cfg, log=print) -> Extractor:
  """The project's in-domain classifier for `train`'s dataset (trained once, cached)."""
  graph, params, info = clf.get_or_train(train, test, eval_cfg.cache_dir,
                                         steps=eval_cfg.classifier_steps, log=log)
  ex = from_flax(f"classifier-{clf.cache_key(train)}", graph, params,
                 num_classes=train.num_classes)
  ex.info = info
  return ex


@dataclasses.dataclass
class RealStats:
  mean: np.ndarray
  cov: np.ndarray
  features: np.ndarray         # a subset for KID / precision-recall / coverage
  class_dist: Optional[np.ndarray]


def _digest(images: np.ndarray) -> str:
  return hashlib.sha1(images[:: max(1, len(images) // 512)].tobytes()).hexdigest()[:12]


def real_stats(data: ImageData, extractor: Extractor, cache_dir: str, max_features: int) -> RealStats:
  """Feature statistics of the real data, cached per dataset/split/extractor."""
  key = f"{data.name}-{len(data.images)}-{_digest(data.images)}-{extractor.name}-{max_features}"
  key = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
  path = os.path.join(os.path.expanduser(cache_dir), "real_stats", key + ".npz")
  if os.path.exists(path):
    z = np.load(path)
    return RealStats(z["mean"], z["cov"], z["features"],
                     z["class_dist"] if z["class_dist"].size else None)
  stats, subset = None, []
  per = max(1, int(np.ceil(max_features / max(1, len(data.images) // 2000 + 1))))
  for s in range(0, len(data.images), 2000):
    f = extractor.features(data.images[s:s + 2000])
    stats = (stats or M.GaussianStats(f.shape[1])).update(f)
    subset.append(f[:per])
  feats = np.concatenate(subset)[:max_features]
  dist = None
  if data.labels is not None and data.num_classes:
    dist = np.bincount(data.labels, minlength=data.num_classes) / len(data.labels)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path + ".tmp.npz", mean=stats.mean, cov=stats.cov, features=feats,
           class_dist=np.asarray([] if dist is None else dist))
  os.replace(path + ".tmp.npz", path)
  return RealStats(stats.mean, stats.cov, feats, dist)


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


def resized(extractor: Extractor, size: int) -> Extractor:
  """`extractor` seeing every image at `size` x `size` first (bilinear with antialiasing,
  jax.image.resize; images already at that size pass unchanged). Lets runs trained at
  different resolutions (Fashion-MNIST at 28 and at 32) be scored by one classifier."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def to_size(images, as_uint8: bool):
    if images.shape[1:3] == (size, size):
      return images
    x = jax.image.resize(jnp.asarray(images, jnp.float32),
                         (len(images), size, size, images.shape[-1]), "linear", antialias=True)
    x = np.asarray(x)
    return np.clip(np.round(x), 0, 255).astype(np.uint8) if as_uint8 else x

  wrap = lambda fn, as_uint8=True: None if fn is None else (lambda im: fn(to_size(im, as_uint8)))
  return dataclasses.replace(extractor, features=wrap(extractor.features),
                             predict=wrap(extractor.predict),
                             features_float=wrap(extractor.features_float, False))


def at_eval_size(config, data: ImageData, heldout: Optional[ImageData], log=print):
  """The reference (whole training split) and held-out data at `config.eval.image_size`,
  loaded from the source at that size (not resampled twice); unchanged when it is 0 or the
  training size."""
  size = config.eval.image_size
  if not size or size == data.image_shape[0]:
    return data, heldout
  import copy  # pylint: disable=g-import-not-at-top
  from jaxgan.data import sources  # pylint: disable=g-import-not-at-top
  cfg = copy.deepcopy(config.data)
  cfg.image_size, cfg.subset = size, 0
  log(f"Evaluating at {size}x{size} (config.eval.image_size): the reference data is loaded "
      "at that size and generated images are resized to it.")
  held = load_heldout(cfg, config.eval.test_split, log) if heldout is not None else None
  return sources.load(cfg), held


class Evaluator:
  """Everything needed to score a generator on one dataset, built once per run."""

  def __init__(self, config, data: ImageData, log=print, metrics: str = ""):
    """`metrics`: the names this evaluator will compute (default config.eval.metrics);
    it builds only the extractors they need (the Inception one at once, so a missing
    weights file stops before anything is generated)."""
    self.config, self.data = config, data
    # a run on a data.subset is measured against the whole split, as Karras et al. 2020
    # do ("all available training images, regardless of the subset used for training")
    reference = data.whole if data.whole is not None else data
    ev = config.eval
    self.heldout = load_heldout(config.data, ev.test_split, log)
    self.names = metrics_lib.parse(metrics or ev.metrics, inception=bool(ev.inception_weights))
    self.inception = inception_eval.maybe_build(config, reference, self.heldout, self.names,
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
    from jaxgan import sampling  # pylint: disable=g-import-not-at-top
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
