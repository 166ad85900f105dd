"""The training loop: `train_and_evaluate(config, workdir[, trials])` runs (or resumes) a
run, or a population of runs trained together.

Everything heavy happens in the jit-compiled train step. A `Run` holds what one job needs
(data, the model, the state, the compiled step, the checkpointer, one `Member` per trial:
a single run is a population of one whose state is not stacked); the loop feeds the step
the deterministic batch stream and after every step asks the periodic actions of
jaxgan/actions.py (log, grids, evaluation, checkpoint, progress). It resumes from the
newest checkpoint by default, saves on SIGTERM/SIGINT at the next step boundary, and stops
on a non-finite loss or parameter before that value can reach a checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
from typing import List, Optional

import jax
import numpy as np
from absl import logging

from jaxgan import actions as actions_lib
from jaxgan import checkpoint as ckpt_lib
from jaxgan import data as data_lib
from jaxgan import population as pop_lib
from jaxgan import rng, sampling, sharding, state as state_lib, train_step as ts, visualize
from jaxgan.config import config_from_dict, config_to_dict, incompatible_fields
from jaxgan.writers import MetricWriter

NonFiniteError = actions_lib.NonFiniteError


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


@dataclasses.dataclass
class Member:
  """One trial: its config, the directory its metrics, grids and evaluations go to, and
  (in a population) its own checkpoints, so it can be sampled like a separate run."""
  name: str
  config: object
  workdir: str
  writer: Optional[MetricWriter] = None
  ckpt: Optional[ckpt_lib.Checkpointer] = None


class Run:
  """What one training job holds: a single run, or a population (trials != None) whose
  states are stacked and stepped by one vmapped or unrolled program."""

  def __init__(self, config, workdir: str, trials: Optional[List[dict]] = None):
    self.config, self.workdir, self.trials = config, workdir, trials
    self.population = trials is not None
    self.is_main = _is_main()
    self.total = int(config.train.steps)
    os.makedirs(workdir, exist_ok=True)
    if self.population:
      pop_lib.check(trials)
      self.members = [Member(pop_lib.trial_name(t), pop_lib.apply(config, t),
                             os.path.join(workdir, pop_lib.trial_name(t))) for t in trials]
    else:
      self.members = [Member("", config, workdir)]
    self.mesh = sharding.make_mesh(config.num_devices)
    sharding.check_batch_size(config.data.batch_size, self.mesh)
    procs = (jax.process_index(), jax.process_count())
    self.data = data_lib.load(config.data, *procs)
    self._build(procs)

  def _build(self, procs):
    built = [setup(m.config, self.data) for m in self.members]
    self.gan = built[0][0]
    step_fn = ts.make_train_step(self.gan, self.config)  # validates loss/regularizers/model
    for m in self.members[1:]:
      ts.validate(m.config, self.gan)
    states = [s for _, s in built]
    repl = sharding.replicated(self.mesh)
    self.batch_axis = 2 if self.population else 1
    if self.population:
      step_fn = pop_lib.population_step(step_fn, len(states),
                                        self.config.train.population_mode)
    self.initial = jax.device_put(pop_lib.stack(states) if self.population else states[0],
                                  repl)
    self.step_fn = jax.jit(step_fn, in_shardings=(
        repl, sharding.batch_sharding(self.mesh, self.batch_axis)),
                           out_shardings=(repl, repl), donate_argnums=0)
    self.batches = [data_lib.Batches(self.data, m.config.data.batch_size,
                                     m.config.train.n_critic, m.config.seed, *procs)
                    for m in self.members]
    ckpt_dir = (os.path.join(self.workdir, "population", "checkpoints") if self.population
                else os.path.join(self.workdir, "checkpoints"))
    best = self.config.eval.best_metric if self.config.eval.every else ""
    cfg = self.config.checkpoint
    self.ckpt = ckpt_lib.Checkpointer(ckpt_dir, keep=cfg.keep, async_save=cfg.async_save,
                                      best_metric="" if self.population else best)
    for m in self.members:
      os.makedirs(m.workdir, exist_ok=True)
      m.writer = MetricWriter(m.workdir, tensorboard=self.config.train.tensorboard,
                              active=self.is_main)
      if self.population:
        m.ckpt = ckpt_lib.Checkpointer(os.path.join(m.workdir, "checkpoints"), keep=cfg.keep,
                                       async_save=False, best_metric=best)

  def meta(self, member: Member) -> dict:
    return {"config": config_to_dict(member.config), "image_shape": list(self.data.image_shape),
            "num_classes": self.gan.num_classes, "class_names": list(self.data.class_names),
            "dataset": self.data.name}

  def restore(self):
    """The state to start from: the newest checkpoint (checked to be of this config or
    population), else the initial one."""
    if self.ckpt.latest_step() is None:
      return self.initial, 0
    state, stored = self.ckpt.restore(self.initial)
    bad = incompatible_fields(config_to_dict(config_from_dict(stored.get("config", {}))),
                              config_to_dict(self.config))
    if bad:
      raise ValueError(
          f"{self.workdir!r} holds a run with a different config; these fields differ: "
          f"{', '.join(bad)}. Use a new --workdir, or restore the old values (only "
          f"train.steps and logging/checkpoint frequencies may change on resume).")
    if self.population and stored.get("trials") != json.loads(json.dumps(self.trials)):
      raise ValueError(f"{self.workdir!r} holds a population of other trials; use a new "
                       "--workdir.")
    start = int(np.asarray(state.step).reshape(-1)[0])
    _say(f"Resumed from the checkpoint of step {start} in {self.workdir}")
    return state, start

  def batch(self, step: int):
    host = [b.for_step(step) for b in self.batches]
    if self.population:
      host = [{k: np.stack([h[k] for h in host]) for k in host[0]}]
    return sharding.put_batch(host[0], self.mesh, self.batch_axis)

  def save(self, step: int, state, results: Optional[List[dict]], final: bool = False):
    """The whole state; in a population also each member evaluated now (or at the end)."""
    best = self.config.eval.best_metric
    score = lambda r: ({best: float(r[best])} if r is not None and best in r else None)
    meta = {**self.meta(self.members[0]), "step": step}
    if not self.population:
      r = results[0] if results else None
      self.ckpt.save(step, state, {**meta, "eval": r}, metrics=score(r), force=True)
      return
    self.ckpt.save(step, state, {**meta, "trials": self.trials}, force=True)
    for i, m in enumerate(self.members):
      r = results[i] if results else None
      if r is not None or final:
        member = jax.tree.map(lambda x: x[i], state)
        m.ckpt.save(step, member, {**self.meta(m), "step": step, "eval": r},
                    metrics=score(r), force=True)

  def close(self):
    for m in self.members:
      m.writer.close()
      if m.ckpt is not None:
        m.ckpt.close()
    self.ckpt.close()


def train_and_evaluate(config, workdir: str, trials: Optional[List[dict]] = None):
  """Trains (or resumes) the GAN described by `config` in `workdir`; with `trials`, all of
  them together as one population (each member in workdir/<trial name>)."""
  run = Run(config, workdir, trials)
  _say(f"Data {run.data.name}: {len(run.data.images)} images of {run.data.image_shape}, "
       f"{run.data.num_classes} classes; {run.mesh.devices.size} device(s) "
       f"({jax.devices()[0].platform})" + (f"; population of {len(run.members)}"
                                           if run.population else ""))
  try:
    state, start = run.restore()
    for m in run.members:
      _write_config(m.config, m.workdir)
    evaluator = _evaluator(config, run.data)
    loop = actions_lib.Loop(run, start, last_saved=run.ckpt.latest_step())
    actions = actions_lib.default_actions(run, start, evaluator, _say)
    state = _loop(run, loop, actions, state, start)
  finally:
    run.close()
  if run.is_main and loop.preempted is None:
    for m in run.members:
      visualize.plot_metrics(os.path.join(m.workdir, "metrics.jsonl"),
                             os.path.join(m.workdir, "losses.png"))
  return state


def _evaluator(config, data):
  if not config.eval.every:
    return None
  if jax.process_count() > 1:
    raise ValueError("Evaluation during multi-process training is not supported: set "
                     "config.eval.every=0 and run --mode eval on the checkpoints afterwards.")
  from jaxgan.eval.evaluate import Evaluator  # pylint: disable=g-import-not-at-top
  return Evaluator(config, data, log=_say)


def _loop(run: Run, loop, actions, state, start: int):
  """Steps from `start` to the end (or a signal), calling every action after each step."""
  if start == 0:
    next(a for a in actions if isinstance(a, actions_lib.SampleGrids)).run(loop, 0, state)
  done = start
  try:
    with _Preemption() as pre:
      for step in range(start, run.total):
        state, metrics = run.step_fn(state, run.batch(step))
        loop.window.append((step, metrics))
        done = step + 1
        for a in actions:
          a(loop, done, state)
        if _stop_requested(pre, done, run.config.train.log_every):
          loop.preempted = pre.signal or signal.SIGTERM
          _say(f"Signal {loop.preempted}: saving a checkpoint at step {done} and exiting.")
          break
      for a in actions:
        a.end(loop, done, state)
  finally:
    for a in actions:
      a.close()
  return state


def restore_for_sampling(workdir: str, which: str = "latest"):
  """(config, gan, state) of the `which` ("latest", "best" or a step number) checkpoint
  in `workdir`, without loading data."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  ckpt = ckpt_lib.Checkpointer(ckpt_dir, async_save=False)
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {ckpt_dir!r}: "
                            "train first (--mode train) with this --workdir.")
  if which == "best":
    best = config_from_dict(ckpt.read_meta(step)["config"]).eval.best_metric
    ckpt.close()
    ckpt = ckpt_lib.Checkpointer(ckpt_dir, async_save=False, best_metric=best)
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
                        seed: int = 0, metrics: str = "all") -> dict:
  """The named metrics (default: every registered one) of a checkpoint of `workdir`:
  printed and written to DIR/eval.json, with the memorisation pairs in
  DIR/memorization.png."""
  from jaxgan.eval.evaluate import Evaluator, write_json  # pylint: disable=g-import-not-at-top
  config, gan, state = restore_for_sampling(workdir, which)
  data = data_lib.load(config.data)
  evaluator = Evaluator(config, data, log=_say)
  result = {"step": int(state.step), "checkpoint": which, "dataset": data.name,
            **evaluator.evaluate_generator(gan, state, num_samples,
                                           rng.stream(rng.root_key(seed), "eval_mode"),
                                           metrics=metrics, seed=seed)}
  images = sampling.generate(gan, state, evaluator.config.eval.memorization_samples,
                             rng.stream(rng.root_key(seed), "eval_mode"),
                             sampling.make_labels(gan.num_classes,
                                                  evaluator.config.eval.memorization_samples))
  result.update(evaluator.memorization(images, os.path.join(workdir, "memorization.png")))
  write_json(result, os.path.join(workdir, "eval.json"))
  return result
