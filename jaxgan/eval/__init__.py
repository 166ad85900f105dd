"""Evaluation: the metrics (jaxgan/eval/metrics, one file each), feature extractors (an
in-domain classifier, Inception), sampling and sample grids, latent-space tools, reports
and memorisation; reads the core (a generator and its state) and the data, never the run."""
from jaxgan.eval.evaluate import (Extractor, RealStats, classifier_extractor,
                                  from_flax, memorization, real_stats)
