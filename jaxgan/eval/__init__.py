"""Sample-quality evaluation: metric math, feature extractors, memorisation."""
from jaxgan.eval import metrics
from jaxgan.eval.evaluate import (Extractor, RealStats, classifier_extractor,
                                  from_flax, memorization, real_stats)
