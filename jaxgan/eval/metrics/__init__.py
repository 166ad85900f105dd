"""Metrics of a generator, keyed by name: `config.eval.metrics` (during training) and
`launch.py --mode eval --metrics` pick them; every module of this package registers its own
(a new metric is one new file; see docs/extending.md), as StyleGAN2-ADA's metric_main does.

A metric is `fn(inputs) -> {name: value}` on an `Inputs` record that computes what it is
asked for once and shares it: the generated images (uint8) and the labels they were asked
for, their features in the evaluation extractor, the real data's statistics, and the
generator itself (`inputs.gan`, `inputs.state`, `inputs.key`) for metrics that sample it
their own way (perceptual path length). `needs` says which of these a metric uses, so an
extractor without class predictions skips metrics that need them.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from jaxgan.base.registry import Registry, import_all


class Metric(NamedTuple):
  fn: Callable[["Inputs"], Dict[str, float]]
  needs: str = "features"     # images | features | predictions | generator | inception
  minimize: Tuple[str, ...] = ()  # its keys where lower is better (eval.best_metric)


METRICS: Registry[Metric] = Registry("metric", "config.eval.metrics")


@dataclasses.dataclass
class Inputs:
  images: np.ndarray                # uint8 [N, H, W, C] generated
  labels: Optional[np.ndarray]      # the classes they were generated for, or None
  extractor: Any                    # jaxgan.eval.features.Extractor
  real: Any                         # jaxgan.eval.features.RealStats
  gan: Any = None                   # the generator, for metrics that sample it themselves
  state: Any = None
  key: Any = None
  seed: int = 0
  inception: Any = None             # jaxgan.eval.inception_eval.InceptionEval, if built

  @functools.cached_property
  def features(self) -> np.ndarray:
    return self.extractor.features(self.images)

  @functools.cached_property
  def predictions(self) -> np.ndarray:
    return self.extractor.predict(self.images)

  @functools.cached_property
  def inception_outputs(self) -> Tuple[np.ndarray, np.ndarray]:
    """(pool3 features, 1008 logits) of the images in the FID Inception, computed once."""
    return self.inception.extractor.features_and_logits(self.images)


def parse(names: str, inception: bool = True) -> List[str]:
  """Metric names of a comma-separated string; "all" = every registered one (without the
  Inception ones when `inception` is False: they need a weights file)."""
  out = [n.strip() for n in names.split(",") if n.strip()]
  if out == ["all"]:
    return [n for n in METRICS.names() if inception or METRICS.get(n).needs != "inception"]
  for n in out:
    METRICS.get(n)  # unknown names fail here, listing the valid ones
  return out


def available(name: str, inputs: Inputs) -> bool:
  m = METRICS.get(name)
  if m.needs == "inception":
    return inputs.inception is not None
  if inputs.extractor is None:
    return False
  if m.needs == "predictions":
    return inputs.extractor.predict is not None and inputs.extractor.num_classes > 0
  if m.needs == "generator":
    return inputs.gan is not None and inputs.extractor.features_float is not None
  return True


def compute(names: List[str], inputs: Inputs) -> Dict[str, float]:
  """Every named metric that `inputs` can serve, merged into one dict."""
  out: Dict[str, float] = {"num_samples": int(len(inputs.images))}
  for n in names:
    if available(n, inputs):
      out.update(METRICS.get(n).fn(inputs))
  return out


import_all(__name__, __path__)
