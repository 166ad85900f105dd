"""The training loop: `train_and_evaluate(config, workdir)` runs (or resumes) a run.

Everything heavy happens in the jit-compiled train step; this loop feeds it the
deterministic batch stream, logs, draws fixed-noise sample grids and checkpoints. It
resumes from the newest checkpoint in `workdir/checkpoints` by default, saves on
SIGTERM/SIGINT at the next step boundary, and stops on a non-finite loss or parameter
before that value can reach a checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import time
from typing import Optional

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxgan import checkpoint as ckpt_lib
from jaxgan import data as data_lib
from jaxgan import rng, sampling, sharding, state as state_lib, train_step as ts, visualize
from jaxgan.writers import MetricWriter

# Fields that may change when a run is resumed: they do not change what is computed.
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.sample_every",
                    "train.checkpoint_every", "train.progress", "checkpoint.keep",
                    "checkpoint.async_save", "sample.", "data.data_dir", "data.download",
                    "num_devices")


def flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


def incompatible_fields(stored: dict, current: dict) -> list:
  """Fields whose change would make a resumed run a different run."""
  a, b = flatten(stored), flatten(current)
  return sorted(k for k in set(a) | set(b)
                if a.get(k) != b.get(k) and not any(k == f or (f.endswith(".") and k.startswith(f))
                                                    for f in RESUMABLE_FIELDS))


class NonFiniteError(FloatingPointError):
  pass


def _first_nonfinite(window):
  """(step, what) of the first step in a window of metrics with a non-finite value."""
  for step, m in window:
    bad = sorted(k for k, v in m.items()
                 if k != "params_finite" and not np.all(np.isfinite(v)))
    if not bool(m.get("params_finite", True)):
      bad = ["parameters of G or D"] + bad
    if bad:
      return step, ", ".join(bad)
  return None


def _stop_requested(pre, step: int, every: int) -> bool:
  """Whether to stop after `step`. One process: as soon as a signal arrived. Several: all
  processes must stop at the same step, so they agree every `every` steps."""
  if jax.process_count() == 1:
    return pre.signal is not None
  if step % every:
    return False
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  flags = multihost_utils.process_allgather(np.array(pre.signal is not None))
  return bool(np.any(flags))


class _Preemption:
  """Turns SIGTERM/SIGINT into a flag checked at step boundaries."""

  def __init__(self):
    self.signal = None
    self._old = {}

  def __enter__(self):
    for s in (signal.SIGTERM, signal.SIGINT):
      try:
        self._old[s] = signal.signal(s, self._handle)
      except ValueError:  # not the main thread
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C interrupts at once
    self.signal = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def _is_main() -> bool:
  return jax.process_index() == 0


def _say(msg: str) -> None:
  """A user-facing line from process 0 (also in the absl log)."""
  logging.info(msg)
  if _is_main():
    print(msg, flush=True)


def _write_config(config, workdir):
  if _is_main():
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def config_from_dict(stored: dict) -> ml_collections.ConfigDict:
  """A stored (JSON) config on top of today's defaults: fields added since it was written
  take their defaults; fields that no longer exist are dropped."""
  from jaxgan.config import default_config  # pylint: disable=g-import-not-at-top
  config = default_config()
  known = flatten(config_to_dict(config))
  config.update_from_flattened_dict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in flatten(stored).items()
       if k in known})
  return config


def setup(config, data: Optional[data_lib.ImageData] = None, image_shape=None,
          num_classes=None):
  """(gan, initial state) for `config` and a dataset (or its shape and class count)."""
  if data is not None:
    image_shape, num_classes = data.image_shape, data.num_classes
  if config.model.conditioning != "none" and not num_classes:
    raise ValueError(
        f"config.model.conditioning={config.model.conditioning!r} needs labelled data, but "
        f"the dataset has no labels (config.data.label_key={config.data.label_key!r}). Set "
        "config.model.conditioning='none' or pick a labelled dataset.")
  return state_lib.create(config, image_shape, num_classes)


def train_and_evaluate(config, workdir: str) -> state_lib.TrainState:
  """Trains (or resumes) the GAN described by `config`, writing everything to `workdir`."""
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_batch_size(config.data.batch_size, mesh)
  procs = (jax.process_index(), jax.process_count())
  data = data_lib.load(config.data, *procs)
  _say(f"Data {data.name}: {len(data.images)} images of {data.image_shape}, "
       f"{data.num_classes} classes; {mesh.devices.size} device(s) "
       f"({jax.devices()[0].platform})")
  gan, state = setup(config, data)
  step_fn = ts.make_train_step(gan, config)  # validates loss/penalty/model first
  batches = data_lib.Batches(data, config.data.batch_size, config.train.n_critic, config.seed,
                             *procs)
  repl = sharding.replicated(mesh)
  state = jax.device_put(state, repl)

  evaluator = None
  if config.eval.every and jax.process_count() > 1:
    raise ValueError("Evaluation during multi-process training is not supported: set "
                     "config.eval.every=0 and run --mode eval on the checkpoints afterwards.")
  if config.eval.every:
    from jaxgan.eval.evaluate import Evaluator  # pylint: disable=g-import-not-at-top
    evaluator = Evaluator(config, data, log=_say)
  ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                               keep=config.checkpoint.keep,
                               async_save=config.checkpoint.async_save,
                               best_metric=config.eval.best_metric if evaluator else "")
  cfg_dict = config_to_dict(config)
  meta = {"config": cfg_dict, "image_shape": list(data.image_shape),
          "num_classes": gan.num_classes, "class_names": list(data.class_names),
          "dataset": data.name}
  if ckpt.latest_step() is not None:
    state, stored = ckpt.restore(state)
    bad = incompatible_fields(config_to_dict(config_from_dict(stored.get("config", {}))),
                              cfg_dict)
    if bad:
      raise ValueError(
          f"{workdir!r} holds a run with a different config; these fields differ: "
          f"{', '.join(bad)}. Use a new --workdir, or restore the old values (only "
          f"train.steps and logging/checkpoint frequencies may change on resume).")
    _say(f"Resumed from the checkpoint of step {int(state.step)} in {workdir}")
  _write_config(config, workdir)

  compiled = jax.jit(step_fn, in_shardings=(repl, sharding.batch_sharding(mesh)),
                     out_shardings=(repl, repl), donate_argnums=0)
  root = rng.root_key(config.seed)
  fixed_z, fixed_labels = sampling.grid_inputs(gan, config.sample.grid_size,
                                               rng.stream(root, "fixed_noise"))
  gen = sampling.generator_fn(gan)

  metrics_path = os.path.join(workdir, "metrics.jsonl")
  writer = MetricWriter(workdir, tensorboard=config.train.tensorboard, active=_is_main())

  grid_steps = set()

  def sample_grid(st, step):
    # Every process runs G (the state is a global array); process 0 writes the PNG.
    if step in grid_steps:
      return
    grid_steps.add(step)
    imgs = visualize.to_uint8(gen(state_lib.sampling_params(st), st.g.stats, fixed_z,
                                  fixed_labels))
    if not _is_main():
      return
    ncol = gan.num_classes if fixed_labels is not None else config.sample.grid_cols or None
    visualize.save_grid(imgs, os.path.join(workdir, "samples", f"step_{step:07d}.png"), ncol)
    writer.image(step, "samples/fixed_noise", visualize.grid(imgs, ncol))

  total = int(config.train.steps)
  start = int(state.step)
  window = []          # (step, device metrics) since the last log line
  t_last, steps_last = time.perf_counter(), start
  progress = None
  if config.train.progress and _is_main():
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    progress = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def check_window():
    """Pulls the window's metrics to the host and stops on the first non-finite one."""
    nonlocal window
    window = [(s, jax.device_get(m)) for s, m in window]
    bad = _first_nonfinite(window)
    if bad is not None:
      latest = ckpt.latest_step()
      kept = (f"the latest checkpoint (step {latest}) holds the last good state"
              if latest is not None else "no checkpoint had been written yet")
      raise NonFiniteError(
          f"Non-finite {bad[1]} at step {bad[0]} (in the update from step {bad[0]} to "
          f"{bad[0] + 1}). Training stopped; {kept}. Lower the learning rates, add a "
          "penalty, or check the data.")

  def flush(step):
    """Logs the mean of the window's metrics as one line of metrics.jsonl."""
    nonlocal window, t_last, steps_last
    check_window()
    if not window:
      return
    now = time.perf_counter()
    row = {"epoch": round(batches.epoch_of_step(step), 4)}
    last = window[-1][1]
    for k in last:
      if k != "params_finite" and not k.startswith("hist_"):
        row[k] = float(np.mean([m[k] for _, m in window]))
    row["steps_per_s"] = (step - steps_last) / max(now - t_last, 1e-9)
    row["lr_g"], row["lr_d"] = config.optim.g.lr, config.optim.d.lr
    t_last, steps_last = now, step
    window = []
    writer.row(step, row)
    writer.histograms(step, {"d_output/real": last["hist_d_real"],
                             "d_output/fake": last["hist_d_fake"]})
    if _is_main():
      if progress is not None:
        keys = [k for k in row if k.endswith("_loss")][:3] + ["d_x", "d_g_z"]
        progress.set_postfix({k: f"{row[k]:.3f}" for k in keys if k in row}, refresh=False)

  last_saved = ckpt.latest_step()

  def save(st, step, eval_result=None):
    nonlocal last_saved
    check_window()  # never checkpoint a state whose steps were not all checked
    if step != last_saved:
      scores = None
      if eval_result is not None and config.eval.best_metric in eval_result:
        scores = {config.eval.best_metric: float(eval_result[config.eval.best_metric])}
      ckpt.save(step, st, {**meta, "step": step, "eval": eval_result}, metrics=scores,
                force=True)
      last_saved = step

  eval_labels = sampling.make_labels(gan.num_classes, config.eval.num_samples)
  evaluated = {}   # step -> result, so the final step is not evaluated twice

  def evaluate(st, step):
    if step in evaluated:
      return evaluated[step]
    check_window()
    images = sampling.generate(gan, st, config.eval.num_samples,
                               rng.stream(root, "eval"), eval_labels)
    result = evaluator(images, labels=eval_labels)
    writer.row(step, {f"eval/{k}" if isinstance(v, (int, float)) else k: v
                      for k, v in result.items()})
    _say(f"step {step}: FD {result['fd']:.3f}, KID {result['kid_mean']:.5f}"
         + (f", classes covered {result['classes_covered']}" if "classes_covered" in result
            else "")
         + (f", label accuracy {result['label_accuracy']:.3f}" if "label_accuracy" in result
            else ""))
    evaluated[step] = result
    return result

  if start == 0:
    sample_grid(state, 0)
  preempted = None
  try:
    with _Preemption() as pre:
      for step in range(start, total):
        batch = sharding.put_batch(batches.for_step(step), mesh)
        state, metrics = compiled(state, batch)
        window.append((step, metrics))
        done = step + 1
        if progress is not None:
          progress.update(1)
        if done % config.train.log_every == 0:
          flush(done)
        if config.train.sample_every and done % config.train.sample_every == 0:
          sample_grid(state, done)
        result = None
        if evaluator is not None and done % config.eval.every == 0:
          result = evaluate(state, done)
        if (done % config.train.checkpoint_every == 0 or result is not None) and done != total:
          save(state, done, result)
        if _stop_requested(pre, done, config.train.log_every):
          preempted = pre.signal or signal.SIGTERM
          _say(f"Signal {preempted}: saving a checkpoint at step {done} and exiting.")
          break
      flush(int(state.step))
      if int(state.step) != last_saved:
        result = None
        if evaluator is not None and not preempted:
          result = evaluate(state, int(state.step))
        save(state, int(state.step), result)
        if not preempted:
          sample_grid(state, int(state.step))
  finally:
    if progress is not None:
      progress.close()
    writer.close()
    ckpt.close()
  if _is_main() and not preempted:
    visualize.plot_metrics(metrics_path, os.path.join(workdir, "losses.png"))
  return state


def restore_for_sampling(workdir: str, which: str = "latest"):
  """(config, gan, state) of the `which` ("latest", "best" or a step number) checkpoint
  in `workdir`, without loading data."""
  ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False,
                               best_metric="fd")
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, 'checkpoints')!r}: "
                            "train first (--mode train) with this --workdir.")
  if which == "best":
    meta = ckpt.read_meta(step)
    ckpt.best_metric = meta["config"]["eval"]["best_metric"]
    step = ckpt.best_step()
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {workdir!r} carries evaluation metrics: "
                              "train with --config.eval.every=N to keep a best checkpoint.")
  elif which != "latest":
    step = int(which)
    if step not in ckpt.all_steps():
      raise FileNotFoundError(f"No checkpoint of step {step} in {workdir!r}; kept steps: "
                              f"{ckpt.all_steps()}.")
  meta = ckpt.read_meta(step)
  config = config_from_dict(meta["config"])
  gan, state = setup(config, image_shape=tuple(meta["image_shape"]),
                     num_classes=meta["num_classes"])
  state, _ = ckpt.restore(state, step)
  ckpt.close()
  return config, gan, state


def evaluate_checkpoint(workdir: str, which: str = "latest", num_samples: int = 10_000,
                        seed: int = 0) -> dict:
  """Every metric for a checkpoint of `workdir`: printed and written to DIR/eval.json, with
  the memorisation pairs in DIR/memorization.png."""
  from jaxgan.eval.evaluate import Evaluator, write_json  # pylint: disable=g-import-not-at-top
  config, gan, state = restore_for_sampling(workdir, which)
  data = data_lib.load(config.data)
  evaluator = Evaluator(config, data, log=_say)
  labels = sampling.make_labels(gan.num_classes, num_samples)
  images = sampling.generate(gan, state, num_samples,
                             rng.stream(rng.root_key(seed), "eval_mode"), labels)
  result = {"step": int(state.step), "checkpoint": which, "dataset": data.name,
            **evaluator(images, labels=labels, full=True, seed=seed)}
  result.update(evaluator.memorization(images, os.path.join(workdir, "memorization.png")))
  write_json(result, os.path.join(workdir, "eval.json"))
  return result
