"""Feature extractors and the statistics of real images in their feature space: what every
metric compares against. An `Extractor` is any function of uint8 images to features (the
in-domain classifier, Inception, a Flax module); `real_stats` computes (and caches per
dataset, split and extractor) the real images' mean, covariance and a feature sample."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Callable, Optional

import numpy as np

from jaxgan.data.sources import ImageData
from jaxgan.eval import classifier as clf
from jaxgan.eval import stats as M


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
