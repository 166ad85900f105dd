"""The Inception side of an evaluation: weights, extractor, reference statistics, protocol.

Built once per Evaluator when a requested metric needs it (`needs="inception"`), before any
image is generated, so a missing weights file stops `--mode eval` at once. The reference is
the run's training split (`config.eval.inception_reference=train`, all of it even when the
run trained on a `data.subset`, as Karras et al. 2020 measure) or its held-out split
(`test`); a published statistics file in pytorch-fid's format (`mu`, `sigma`,
`config.eval.inception_ref_stats`) replaces the reference's mean and covariance for
`fid_inception`. Everything that decides the numbers is written beside them as `protocol`
(and into eval.json), so two FIDs can be checked for comparability.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxgan.base.errors import UserError, UserFileError
from jaxgan.eval import inception as net
from jaxgan.eval import inception_extractor, inception_weights
from jaxgan.eval.features import RealStats, real_stats

IS_SPLITS = 10            # Salimans et al. 2016, as every paper reports IS
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000   # StyleGAN2-ADA's kid50k settings
PR_K = 3                  # Kynkaanniemi et al. 2019


@dataclasses.dataclass
class InceptionEval:
  extractor: inception_extractor.InceptionExtractor
  real: object              # jaxgan.eval.features.RealStats of the reference images
  protocol: dict


def read_stats(path: str):
  """(mu, sigma) of a pytorch-fid statistics file."""
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise UserFileError(f"config.eval.inception_ref_stats={path!r}: no such file. Give a "
                        "pytorch-fid .npz with mu and sigma, or '' to use the reference "
                        "images.")
  with np.load(path) as z:
    if "mu" not in z.files or "sigma" not in z.files:
      raise UserError(f"config.eval.inception_ref_stats={path!r} has {z.files}, not "
                      "pytorch-fid's mu and sigma.")
    mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
  if mu.shape != (net.POOL_DIM,) or sigma.shape != (net.POOL_DIM, net.POOL_DIM):
    raise UserError(f"config.eval.inception_ref_stats={path!r}: mu {mu.shape}, sigma "
                    f"{sigma.shape}; Inception pool3 statistics are (2048,) and (2048, 2048).")
  return mu, sigma


def write_stats(path: str, mu: np.ndarray, sigma: np.ndarray) -> str:
  """pytorch-fid's format (`np.savez(path, mu=..., sigma=...)`), written atomically."""
  tmp = path + ".tmp.npz"
  np.savez(tmp, mu=mu, sigma=sigma)
  os.replace(tmp, path)
  return path


def reference_images(config, data, heldout):
  if config.eval.inception_reference == "train":
    return data
  if heldout is None:
    raise UserError(f"config.eval.inception_reference='test' but {data.name} has no "
                    "held-out split here; use 'train'.")
  return heldout


def build(config, data, heldout, log=print) -> InceptionEval:
  """Weights -> extractor -> reference statistics (cached per weights, resize and data)."""
  ev = config.eval
  if not ev.inception_weights:
    raise UserFileError(inception_weights.missing_file_message(""))
  graphdef, state, info = inception_weights.load(ev.inception_weights, ev.cache_dir,
                                                 ev.inception_sha256)
  ex = inception_extractor.InceptionExtractor(graphdef, state, info, ev.inception_resize,
                                              ev.inception_batch_size)
  ref = reference_images(config, data, heldout)
  log(f"Inception reference: {len(ref.images)} images of {ref.name} "
      f"({ev.inception_reference}), weights {info['weights_sha256'][:12]} "
      f"({info['weights_check']}), resize {ev.inception_resize}.")
  real = real_stats(ref, ex, ev.cache_dir, ev.max_real_features)
  source = f"{ref.name} {ev.inception_reference} split, {len(ref.images)} images"
  if ev.inception_ref_stats:
    mu, sigma = read_stats(ev.inception_ref_stats)
    real = RealStats(mu, sigma, real.features, None)
    source = os.path.abspath(os.path.expanduser(ev.inception_ref_stats))
  protocol = {
      "network": "pytorch-fid FID InceptionV3 (TensorFlow 2015-12-05 graph)",
      **ex.info, "input": "uint8 -> grayscale repeated to RGB -> resize -> [-1, 1]",
      "reference": source, "reference_features_kept": int(len(real.features)),
      "is_splits": IS_SPLITS, "kid_subsets": KID_SUBSETS, "kid_subset_size": KID_SUBSET_SIZE,
      "pr_k": PR_K, "precision": "float32, convolutions at Precision.HIGHEST"}
  return InceptionEval(ex, real, protocol)
