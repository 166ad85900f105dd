"""Overfitting made visible: D's mean output on training images and on held-out ones.

Karras et al. 2020 ("Training Generative Adversarial Networks with Limited Data", fig. 1b)
diagnose a discriminator that memorises its training set by the gap between its outputs on
training reals and on validation reals: they agree while D generalises and drift apart as
it overfits, after which the generator degrades. The same two numbers are logged with every
metrics row:

  d_real_train    mean raw output of D on a fixed batch of training images
  d_real_heldout  the same on a fixed batch of real images the run never trains on
  d_real_gap      their difference

D runs in inference mode (no dropout, BatchNorm with its running statistics) on the
images without augmentation (a latent run: normalised latent means), so the two batches
are measured the same way and the numbers do not depend on the step's random draws. The held-out images are those outside
`config.data.subset`, or the dataset's held-out split (`config.eval.test_split`) when
evaluation loads it. ADA's r_t (`ada_rt`, the sign-based heuristic that steers p) and p
(`augment_p`) are logged beside them by the train step.
"""
from __future__ import annotations

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np



class DiscriminatorProbe:
  """Callable on a (single member's) train state: {d_real_train, d_real_heldout, ...}."""

  def __init__(self, gan, train_data, heldout, batch_size: int):
    use_labels = gan.num_classes > 0 and gan.conditioning != "acgan"
    n = min(batch_size, len(train_data.images), len(heldout.images))
    idx = np.sort(np.random.RandomState(0).choice(len(train_data.images), n, replace=False))
    labels = lambda d, i: (jnp.asarray(d.labels[i], jnp.int32) if use_labels else None)
    self.train = (jnp.asarray(train_data.images[idx]), labels(train_data, idx))
    self.heldout = (jnp.asarray(heldout.images[:n]), labels(heldout, np.arange(n)))
    self.size = n

    def mean_output(params, stats, images, labels):
      logits, _, _ = gan.discriminate(params, stats, gan.real_input(images), labels,
                                      train=False)
      return jnp.mean(logits)
    self._mean = jax.jit(mean_output)

  def __call__(self, state) -> Dict[str, float]:
    d = state.d
    train = float(self._mean(d.params, d.stats, *self.train))
    heldout = float(self._mean(d.params, d.stats, *self.heldout))
    return {"d_real_train": train, "d_real_heldout": heldout,
            "d_real_gap": train - heldout}


def make_probe(run, evaluator, say) -> Optional[DiscriminatorProbe]:
  """The probe of a run, or None (with one line saying why) when no held-out images exist."""
  if jax.process_count() > 1:
    return None
  heldout = run.data.heldout
  if heldout is None and evaluator is not None and run.gan.latent is None:
    heldout = getattr(evaluator, "heldout", None)
  if heldout is None or len(heldout.images) == 0:
    say("D probe off: no held-out real images (train on config.data.subset, or evaluate "
        "a TFDS dataset with a config.eval.test_split).")
    return None
  if run.gan.num_classes > 0 and run.gan.conditioning != "acgan" and heldout.labels is None:
    say("D probe off: the held-out images have no labels for the conditional D.")
    return None
  probe = DiscriminatorProbe(run.gan, run.data, heldout, run.config.data.batch_size)
  say(f"D probe: {probe.size} training and {probe.size} held-out real images "
      "(d_real_train, d_real_heldout in metrics.jsonl).")
  return probe
