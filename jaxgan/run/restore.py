"""Reading a run back for sampling and evaluation: `restore_for_sampling(workdir, which)`
and `evaluate_checkpoint(workdir, ...)`.

Nothing here loads the training data (except evaluation, which needs the real statistics)
or writes into the run's checkpoints: the checkpointer is opened read-only, so sampling a
run that is still training, or one on a read-only filesystem, is safe. A damaged checkpoint
is reported with the steps that can still be read.
"""
from __future__ import annotations

import os

import jax

from jaxgan.run import checkpoint as ckpt_lib
from jaxgan import data as data_lib
from jaxgan.base import rng
from jaxgan.core import state as state_lib
from jaxgan.eval import posthoc_ema, sampling
from jaxgan.config import apply_eval_overrides, config_from_dict
from jaxgan.base.errors import UserError, short_reason


def _say(msg: str) -> None:
  if jax.process_index() == 0:
    print(msg, flush=True)


def restore_for_sampling(workdir: str, which: str = "latest", ema_sigma_rel: float = 0.0):
  """(config, gan, state) of the `which` ("latest", "best" or a step number) checkpoint
  in `workdir`, without loading data and without writing anything; with `ema_sigma_rel`,
  its sampling weights are that post-hoc EMA (with_posthoc_ema)."""
  config, gan, state = _restore(workdir, which)
  if ema_sigma_rel:
    state, _ = with_posthoc_ema(workdir, config, state, ema_sigma_rel)
  return config, gan, state


def with_posthoc_ema(workdir: str, config, state, sigma_rel: float,
                     flag: str = "--ema_sigma_rel"):
  """(`state` sampling with G's post-hoc EMA of width `sigma_rel`, reconstructed from the
  run's snapshots up to the state's step; what the reconstruction used)."""
  at = int(state.step) * int(config.data.batch_size)
  params, info = posthoc_ema.reconstruct(workdir, state.g.params, sigma_rel, at, flag=flag)
  if info["images"] != at:
    _say(f"Post-hoc EMA {sigma_rel}: the last snapshot at or before step {int(state.step)} "
         f"is at step {info['step']} ({info['images']} images); reconstructed there.")
  params = jax.tree.map(lambda p, ref: jax.numpy.asarray(p, ref.dtype), params, state.g.params)
  return state.replace(ema=params), info


def _restore(workdir: str, which: str):
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise UserError(f"No checkpoint in {ckpt_dir!r}: train first (--mode train) with this "
                    "--workdir.")
  ckpt = ckpt_lib.Checkpointer(ckpt_dir, async_save=False, read_only=True)
  try:
    step = _pick_step(ckpt, workdir, which)
    try:
      return _load_for_sampling(ckpt, step)
    except Exception as e:  # pylint: disable=broad-except  (damage is the user's to fix)
      others = [s for s in ckpt.all_steps() if s != step and _readable(ckpt, s)]
      raise UserError(f"Checkpoint step {step} in {ckpt_dir!r} cannot be restored "
                      f"({short_reason(e)}); "
                      f"readable steps: {others or 'none'}"
                      + (f"; pass --checkpoint {max(others)}." if others else ".")) from None
  finally:
    ckpt.close()


def _pick_step(ckpt, workdir: str, which: str) -> int:
  steps = ckpt.all_steps()
  if not steps:
    raise UserError(f"No checkpoint in {ckpt.directory!r}: train first (--mode train) with "
                    "this --workdir.")
  if which == "latest":
    return max(steps)
  if which == "best":
    best = config_from_dict(ckpt.read_meta(max(steps))["config"]).eval.best_metric
    scorer = ckpt_lib.Checkpointer(ckpt.directory, read_only=True, best_metric=best)
    step = scorer.best_step()
    scorer.close()
    if step is None:
      raise UserError(f"No checkpoint in {workdir!r} carries evaluation metrics: train with "
                      "--config.eval.every=N to keep a best checkpoint, or pass --checkpoint "
                      "latest.")
    return step
  if not str(which).isdigit() or int(which) not in steps:
    raise UserError(f"--checkpoint={which!r}: no such checkpoint in {workdir!r}; kept steps: "
                    f"{sorted(steps)} (or 'latest', 'best').")
  return int(which)


def _load_for_sampling(ckpt, step: int):
  meta = ckpt.read_meta(step)
  config = config_from_dict(meta["config"])
  gan, state = state_lib.setup(config, image_shape=tuple(meta["image_shape"]),
                               num_classes=meta["num_classes"], latent=meta.get("latent"))
  state, _ = ckpt.restore(state, step)
  return config, gan, state


def _readable(ckpt, step: int) -> bool:
  try:
    _load_for_sampling(ckpt, step)
    return True
  except Exception:  # pylint: disable=broad-except
    return False


def evaluate_checkpoint(workdir: str, which: str = "latest", num_samples: int = 0,
                        seed: int = 0, metrics: str = "all", overrides=(),
                        ema_sigma_rel: float = 0.0) -> dict:
  """The named metrics (default: every registered one; the Inception ones when
  eval.inception_weights is set) of a checkpoint of `workdir`: printed and written to
  DIR/eval.json, with the memorisation pairs in DIR/memorization.png. `overrides`:
  ("eval.FIELD", "value") pairs applied to the run's stored config (launch.py's
  --config.eval.* flags); `num_samples` 0: eval.inception_samples when an Inception metric
  is computed, else 10,000; `ema_sigma_rel`: evaluate that post-hoc EMA."""
  from jaxgan.eval.evaluate import Evaluator, write_json  # pylint: disable=g-import-not-at-top
  from jaxgan.eval.inception_eval import write_stats  # pylint: disable=g-import-not-at-top
  config, gan, state = restore_for_sampling(workdir, which, ema_sigma_rel)
  apply_eval_overrides(config, overrides)
  # a prepared (streamable) dataset: only eval.max_real_features images, spread over it
  data = data_lib.open_for_eval(config.data, config.eval.max_real_features, say=_say)
  evaluator = Evaluator(config, data, log=_say, metrics=metrics)
  if not num_samples:
    num_samples = config.eval.inception_samples if evaluator.inception else 10_000
  result = {"step": int(state.step), "checkpoint": which, "dataset": data.name,
            **({"ema_sigma_rel": ema_sigma_rel} if ema_sigma_rel else {}),
            **evaluator.evaluate_generator(gan, state, num_samples,
                                           rng.stream(rng.root_key(seed), "eval_mode"),
                                           seed=seed)}
  if evaluator.inception is not None:
    real = evaluator.inception.real
    result["inception_protocol"]["reference_stats_file"] = write_stats(
        os.path.join(workdir, "inception_reference_stats.npz"), real.mean, real.cov)
  images = sampling.generate(gan, state, evaluator.config.eval.memorization_samples,
                             rng.stream(rng.root_key(seed), "eval_mode"),
                             sampling.make_labels(gan.num_classes,
                                                  evaluator.config.eval.memorization_samples))
  result.update(evaluator.memorization(images, os.path.join(workdir, "memorization.png")))
  write_json(result, os.path.join(workdir, "eval.json"))
  return result
