"""Mode coverage through the evaluation extractor's class predictions.

classes  the histogram of predicted classes of the samples: classes covered and the KL
         divergence from the data's class distribution (a collapsed generator covers 1-2
         classes); for a conditional generator also `label_accuracy`, the fraction of
         samples classified as the class they were generated for.
"""
from __future__ import annotations

import numpy as np

from jaxgan.eval import stats as M
from jaxgan.eval.metrics import METRICS, Inputs, Metric


def classes(inp: Inputs):
  out = dict(M.class_coverage(inp.predictions, inp.extractor.num_classes,
                              inp.real.class_dist))
  if inp.labels is not None:
    out["label_accuracy"] = float(np.mean(inp.predictions == np.asarray(inp.labels)))
  return out


METRICS.register("classes", Metric(classes, needs="predictions", minimize=("class_kl",)))
