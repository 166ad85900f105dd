"""The training loop: `train_and_evaluate(config, workdir[, trials])` runs (or resumes) a
run, or a population of runs trained together.

Everything heavy happens in the jit-compiled train step. A `Run` holds what one job needs
(data, the model, the state, the compiled step, the checkpointer, one `Member` per trial:
a single run is a population of one whose state is not stacked); the loop feeds the step
the deterministic batch stream and after every step asks the periodic actions of
jaxgan/run/actions.py (log, grids, evaluation, checkpoint, progress). It resumes from the
newest checkpoint by default, saves on SIGTERM/SIGINT at the next step boundary, and stops
on a non-finite loss or parameter before that value can reach a checkpoint.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
from typing import List, Optional

import jax
import numpy as np
from absl import logging

from jaxgan.run import actions as actions_lib
from jaxgan.run import checkpoint as ckpt_lib
from jaxgan.run import compile_cache, init_from, program_cache
from jaxgan import data as data_lib
from jaxgan.core import multistep, regularizers
from jaxgan.run import population as pop_lib
from jaxgan.base import sharding, sizes
from jaxgan.core import state as state_lib, train_step as ts
from jaxgan.run import platform, stopping
from jaxgan.eval import visualize
from jaxgan.run import validate as validate_lib
from jaxgan.run import workdir as workdir_lib
from jaxgan.config import config_from_dict, config_to_dict, incompatible_fields
from jaxgan.base.errors import Preempted, UserError, short_reason
from jaxgan.run.writers import MetricWriter

NonFiniteError = actions_lib.NonFiniteError


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


# (gan, initial state) of a config: jaxgan/core/state.py; kept here for the callers of train.setup
setup = state_lib.setup


def out_of_memory(e: BaseException) -> bool:
  """Whether an XLA error is an allocation failure (RESOURCE_EXHAUSTED on GPU/TPU)."""
  return "RESOURCE_EXHAUSTED" in str(e)


def out_of_memory_advice(config) -> str:
  t, b = config.train, config.data.batch_size
  tips = []
  n = next((k for k in (2, 4, 8, 16) if k > t.grad_accum and b % k == 0), None)
  if n:
    tips.append(f"--config.train.grad_accum={n} (micro-batches of {b // n}, the same "
                "update)")
  if not t.remat:
    tips.append("--config.train.remat=True (G and D recomputed in the backward pass)")
  if t.steps_per_call > 1:
    tips.append("--config.train.steps_per_call=1 (one step's batch on the device at a time)")
  fix = " and/or ".join(tips) or "a smaller config.data.batch_size"
  return (f"Out of device memory in the train step at config.data.batch_size={b} "
          f"(train.grad_accum={t.grad_accum}, train.remat={t.remat}); set {fix}.")


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
  states are stacked and stepped by one vmapped or unrolled program. The loop's actions
  see it through `actions.RunView`."""

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
    self.data = data_lib.open_data(config.data, *procs, say=_say)   # in memory or streamed
    self.on_device = None   # config.data.on_device: the data on the mesh, batches gathered there
    if config.data.on_device:
      from jaxgan.data import device  # pylint: disable=g-import-not-at-top
      device.check(self.data, jax.process_count())
      self.on_device = device.DeviceData(self.data, self.mesh, say=_say)
    self._build(procs)
    self._build_io(procs)

  def _build(self, procs):
    built = [setup(m.config, self.data) for m in self.members]
    self.gan = built[0][0]
    for m in self.members[1:]:   # the first is self.config, validated before the data
      validate_lib.validate(m.config)
    if self.config.model.freeze_d and not self.config.init_from:
      _say(f"config.model.freeze_d={self.config.model.freeze_d} without config.init_from: "
           "D's first blocks stay at their random initialisation (Freeze-D is for "
           "fine-tuning a trained D).")
    for e in self.gan.regularizers:
      if e.auto:
        d = self.config.data
        h, w = sizes.hw(d.image_size)
        _say(f"Regularizer {e.name}: weight 'auto' = 0.0002 x {h} x {w} / "
             f"{d.batch_size} = {e.weight:.6g} (StyleGAN2-ADA's heuristic gamma).")
    step = ts.make_train_step(self.gan, self.config)
    states = [s for _, s in built]
    repl = sharding.replicated(self.mesh)
    self.batch_axis = 2 if self.population else 1
    self.initial = jax.device_put(pop_lib.stack(states) if self.population else states[0],
                                  repl)

    def program(pattern):
      fn = functools.partial(step, pattern=pattern)
      if self.population:
        fn = pop_lib.population_step(fn, len(states), self.config.train.population_mode)
      return fn

    def compiled(fn, batch_axis, extra=()):   # what _compile jits: the state is donated
      return fn, (repl, sharding.batch_sharding(self.mesh, batch_axis), *[repl for _ in extra])
    # one compiled step per pattern of lazy regularizers (TrainStep.lazy_pattern)
    self._patterns = step.__self__.lazy_pattern
    self._compiled, self._said_compile = {}, False
    self._program, self._jit = program, compiled
    self._repl = repl
    cache_dir = compile_cache.current()
    self.programs = None   # traced programs on disk: jaxgan/run/program_cache.py
    # a term that reads a frozen network's weights file (REPA's encoder) closes over
    # them, and jax.export writes closed-over arrays into the program (350 MB for
    # DINOv2-B): such a run traces its step itself (JAX's compilation cache still serves
    # the XLA half, which takes them as arguments)
    frozen = any(regularizers.frozen_files(self.gan.regularizers).values())
    if frozen and cache_dir is not None:
      _say("Traced-program cache off for this run: its step holds a frozen encoder's "
           "weights (the compilation cache stays on).")
    if cache_dir is not None and jax.process_count() == 1 and not frozen:
      # a latent run's program holds its normalisation: the digest must see it
      latent = ([{"latent_space": dataclasses.asdict(self.gan.latent)}]
                if self.gan.latent is not None else [])
      self.programs = program_cache.ProgramCache(
          os.path.join(cache_dir, "programs"),
          [config_to_dict(m.config) for m in self.members] + latent, _say)
    self.per_call = int(self.config.train.steps_per_call)
    self.scan_calls = multistep.resolved_loop(self.config) == "scan"

  def step_fn(self, state, batch, step: int):
    """The compiled train step for host step `step` (its lazy regularizers fixed)."""
    pattern = self._patterns(step)
    fn = self._compile(pattern, lambda: self._jit(self._program(pattern), self.batch_axis),
                       state, batch)
    return fn(state, batch)

  def _compile(self, key, make, *args):
    """The compiled program for `key` (make() gives the function and its arguments'
    shardings; the state, first, is donated), compiled ahead of time for `args` so the
    first one's compile time can be said. Its traced program comes from the program
    cache and its executable from JAX's compilation cache when an earlier process made
    them (jaxgan/run/program_cache.py, compile_cache.py)."""
    if key not in self._compiled:
      with compile_cache.Timer() as total:
        fn, in_shardings = make()
        program = None
        if self.programs is not None:
          program = self.programs.compile(key, fn, args, in_shardings, self._repl)
        if program is None:
          with compile_cache.Timer() as trace:
            lowered = jax.jit(fn, in_shardings=in_shardings, out_shardings=self._repl,
                              donate_argnums=0).lower(*args)
          program, first, before_xla = lowered.compile(), "tracing and lowering", trace.seconds
        else:
          first = ("traced program loaded from the program cache" if program.loaded else
                   "tracing, lowering and saving the program")
          before_xla = program.trace_s
        self._compiled[key] = program
      if not self._said_compile:
        self._said_compile = True
        _say(f"Compiled the first train call in {total.seconds:.1f} s ({first} "
             f"{before_xla:.1f} s, XLA {total.seconds - before_xla:.1f} s){total.note()}.")
    return self._compiled[key]

  def call(self, state, step: int):
    """The steps from `step` to the next multiple of train.steps_per_call (or the end) in
    one compiled call (jaxgan/core/multistep.py): (state, metrics, k); with steps_per_call > 1
    the metrics of the k steps are stacked on a leading axis. Running out of device memory
    is a user error that names the switches that fit the step into less."""
    try:
      return self._call(state, step)
    except Exception as e:  # pylint: disable=broad-except  (XLA's errors have no own type)
      if not out_of_memory(e):
        raise
      raise UserError(out_of_memory_advice(self.config)) from None

  def _call(self, state, step: int):
    if self.per_call == 1:
      return (*self.step_fn(state, self.batch(step), step), 1)
    k = multistep.call_size(step, self.per_call, self.total)
    patterns = tuple(self._patterns(s) for s in range(step, step + k))
    batches = self.batch(step, k)
    if not self.scan_calls:
      fn = self._compile(("call", k, patterns), lambda: self._jit(
          multistep.chain([self._program(p) for p in patterns], False), self.batch_axis + 1),
          state, batches)
      return (*fn(state, batches), k)
    kinds = tuple(dict.fromkeys(patterns))   # each step's pattern, by a lax.switch index
    which = np.array([kinds.index(p) for p in patterns], np.int32)
    fn = self._compile(("scan", k, kinds), lambda: self._jit(
        multistep.scan_switch([self._program(p) for p in kinds]), self.batch_axis + 1,
        extra=(None,)), state, batches, which)
    return (*fn(state, batches, which), k)

  def _build_io(self, procs):
    self.batches = [data_lib.make_batches(self.data, m.config.data.batch_size,
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
            "dataset": self.data.name, "latent": getattr(self.data, "latent", None)}

  def restore(self, resume_step: Optional[int] = None):
    """The state to start from: the newest checkpoint (or `resume_step`'s), checked to be
    of this config or population before its state is read, else the initial one."""
    steps = self.ckpt.all_steps()
    if not steps:
      if resume_step is not None:
        raise UserError(f"--resume_step={resume_step}: {self.ckpt.directory!r} holds no "
                        "checkpoint; drop the flag to start the run.")
      if self.config.init_from:
        return self._init_from(), 0
      return self.initial, 0
    if resume_step is not None:
      self._set_aside_after(resume_step, steps)
    step = max(steps) if resume_step is None else resume_step
    try:
      stored = self.ckpt.read_meta(step)
    except Exception as e:  # pylint: disable=broad-except  (any damage: a user-fixable state)
      self._damaged(step, e)
    self._check_stored(stored)
    try:
      state, _ = self.ckpt.restore(self.initial, step)
    except Exception as e:  # pylint: disable=broad-except
      self._damaged(step, e)
    start = int(np.asarray(state.step).reshape(-1)[0])
    for m in self.members:
      _trim_metrics(m.workdir, start)
    _say(f"Resumed from the checkpoint of step {start} in {self.workdir}")
    return state, start

  def _init_from(self):
    """The initial state with another run's weights (config.init_from, fine-tuning)."""
    if self.population:
      raise UserError("config.init_from: a population starts from its own initial states; "
                      "fine-tune one run (without --population) per source.")
    # a run stopped before its first checkpoint starts again from the same source step
    spec = init_from.recorded(self.workdir) or self.config.init_from
    state, record = init_from.initial_state(spec, self.config.init_from_parts, self.initial)
    state = jax.device_put(state, self._repl)
    if self.is_main:
      init_from.write_record(self.workdir, record)
    _say(f"Fine-tuning from {record['init_from']} at step {record['step']} "
         f"({'G, its EMA and D' if record['parts'] == 'g_d' else 'G and its EMA'}; "
         "optimizer states fresh).")
    return state

  def _check_stored(self, stored: dict):
    bad = incompatible_fields(config_to_dict(config_from_dict(stored.get("config", {}))),
                              config_to_dict(self.config))
    if bad:
      raise UserError(
          f"{self.workdir!r} holds a run with a different config; these fields differ: "
          f"{', '.join(bad)}. Use a new --workdir, or restore the old values (only "
          f"train.steps and logging/checkpoint frequencies may change on resume).")
    mine, theirs = getattr(self.data, "latent", None), stored.get("latent")
    if json.loads(json.dumps(mine)) != theirs:
      what = lambda l: ("images" if l is None else
                        f"latents of encoder {l['encoder']['weights_sha256'][:12]}")
      raise UserError(
          f"{self.workdir!r} was trained on {what(theirs)} with other statistics than "
          f"config.data.folder={self.config.data.folder!r} holds now ({what(mine)}); the "
          "latent dataset changed since: resume with the dataset it was trained on, or use a "
          "new --workdir.")
    if self.population and stored.get("trials") != json.loads(json.dumps(self.trials)):
      raise UserError(f"{self.workdir!r} holds a population of other trials; use a new "
                      "--workdir or the same --seeds/--sweep.")

  def _damaged(self, step: int, error: Exception):
    reason = short_reason(error)
    good = self.ckpt.newest_readable(self.initial, below=step)
    where = f"Checkpoint step {step} in {self.ckpt.directory!r} cannot be restored ({reason})."
    if good is None:
      raise UserError(f"{where} No older checkpoint can be restored either; start a new "
                      "run with another --workdir.") from None
    raise UserError(f"{where} The newest step that can be is {good}: add --resume_step={good} "
                    "to resume from it (newer checkpoints are then moved to "
                    "checkpoints_set_aside/, not deleted).") from None

  def _set_aside_after(self, resume_step: int, steps: List[int]):
    if resume_step not in steps:
      raise UserError(f"--resume_step={resume_step}: no such checkpoint in "
                      f"{self.ckpt.directory!r}; its steps are {sorted(steps)}.")
    aside = os.path.join(self.workdir, "checkpoints_set_aside")
    for s in sorted(x for x in steps if x > resume_step):
      os.makedirs(aside, exist_ok=True)
      target = os.path.join(aside, str(s))
      while os.path.exists(target):
        target += "_"
      os.rename(os.path.join(self.ckpt.directory, str(s)), target)
      _say(f"Moved checkpoint step {s} to {target} (resuming from step {resume_step}).")
    self.ckpt.manager.reload()

  def batch(self, step: int, k: int = 0):
    """Step `step`'s batch on the mesh; with k > 0 the batches of steps step..step+k-1
    stacked on a new leading axis (one transfer for a call of k steps). With
    config.data.on_device only their int32 indices travel; the images are gathered there."""
    def host(s):
      parts = [({"indices": b.step_indices(s)} if self.on_device is not None else b.for_step(s))
               for b in self.batches]
      return ({n: np.stack([p[n] for p in parts]) for n in parts[0]} if self.population
              else parts[0])
    if not k:
      out, axis = host(step), self.batch_axis
    else:
      many = [host(s) for s in range(step, step + k)]
      out, axis = {n: np.stack([h[n] for h in many]) for n in many[0]}, self.batch_axis + 1
    if self.on_device is not None:
      return self.on_device.gather(out["indices"], axis)
    return sharding.put_batch(out, self.mesh, axis)

  def epoch(self, member: int, step: int) -> float:
    return self.batches[member].epoch_of_step(step)

  def latest_checkpoint(self) -> Optional[int]:
    return self.ckpt.latest_step()

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
    for b in self.batches:
      if hasattr(b, "close"):   # streamed batches stop their decoding processes
        b.close()
    for m in self.members:
      m.writer.close()
      if m.ckpt is not None:
        m.ckpt.close()
    self.ckpt.close()


def train_and_evaluate(config, workdir: str, trials: Optional[List[dict]] = None,
                       resume_step: Optional[int] = None):
  """Trains (or resumes) the GAN described by `config` in `workdir`; with `trials`, all of
  them together as one population (each member in workdir/<trial name>). Holds the
  workdir's lock throughout; raises errors.Preempted after a signal-requested save."""
  validate_lib.validate(config)
  workdir_lib.prepare(workdir)
  with workdir_lib.lock_for_training(workdir), platform.speedups(config.train.cpu_conv):
    state, preempted = _train(config, workdir, trials, resume_step)
  if preempted is not None:
    raise Preempted(preempted, int(np.asarray(state.step).reshape(-1)[0]))
  return state


def _train(config, workdir, trials, resume_step):
  run = Run(config, workdir, trials)
  _say(f"Data {run.data.name}: {data_lib.count(run.data)} images of {run.data.image_shape}, "
       f"{run.data.num_classes} classes; {run.mesh.devices.size} device(s) "
       f"({jax.devices()[0].platform})" + (f"; population of {len(run.members)}"
                                           if run.population else ""))
  try:
    state, start = run.restore(resume_step)
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
  return state, loop.preempted


def _trim_metrics(workdir: str, step: int):
  """Drops rows logged after `step` (after the checkpoint a run resumes from: they belong
  to the steps that are trained again), so metrics.jsonl stays in order without
  duplicates."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path) or not _is_main():
    return
  with open(path) as f:
    lines = f.readlines()
  keep = [l for l in lines if l.strip() and json.loads(l).get("step", 0) <= step]
  if len(keep) != len(lines):
    with open(path + ".tmp", "w") as f:
      f.writelines(keep)
    os.replace(path + ".tmp", path)


def _evaluator(config, data):
  if not config.eval.every:
    return None
  if jax.process_count() > 1:
    raise ValueError("Evaluation during multi-process training is not supported: set "
                     "config.eval.every=0 and run --mode eval on the checkpoints afterwards.")
  from jaxgan.eval.evaluate import Evaluator  # pylint: disable=g-import-not-at-top
  if getattr(data, "latent", None) is not None:   # decoded samples against the images
    data = data_lib.open_for_eval(config.data, config.eval.max_real_features, say=_say)
    _say(f"Latent run: samples are decoded by {config.model.decoder or 'the encoder'} and "
         f"compared with {data.name}.")
  elif not isinstance(data, data_lib.ImageData):   # streamed: a decoded, evenly spread sample
    data = data.reference(config.eval.max_real_features)
    _say(f"Evaluation compares with {len(data.images)} images spread over the streamed data.")
  return Evaluator(config, data, log=_say)


def _loop(run: Run, loop, actions, state, start: int):
  """Steps from `start` to the end (or a signal), calling every action after each step."""
  if start == 0:
    next(a for a in actions if isinstance(a, actions_lib.SampleGrids)).run(loop, 0, state)
  if start >= run.total and jax.process_index() == 0:  # say so rather than exit silently
    print(f"The run is already at step {start}, at or past config.train.steps={run.total}: "
          "nothing to train. Raise --config.train.steps to continue it.", flush=True)
  done, every = start, run.config.train.log_every
  budget = stopping.Budget(run.config.train.max_seconds)
  try:
    with stopping.Preemption() as pre:
      while done < run.total:
        state, metrics, k = run.call(state, done)
        loop.add(done, metrics, k if run.per_call > 1 else 0)
        done += k
        for a in actions:
          a(loop, done, state)
        if stopping.agreed(pre.signal is not None, done, every):
          loop.preempted = pre.signal or signal.SIGTERM
          _say(f"Signal {loop.preempted}: saving a checkpoint at step {done} and exiting.")
          break
        if done < run.total and stopping.agreed(budget.spent(loop), done, every):
          _say(f"config.train.max_seconds={budget.seconds:g} reached at step {done}: "
               "ending the run there (raise it, or set it to 0, to go on).")
          break
      for a in actions:
        a.end(loop, done, state)
      run.ckpt.wait()  # a Ctrl-C now waits for the save to be complete
  finally:
    for a in actions:
      a.close()
  return state


# Reading a run back (sampling, evaluation) lives in jaxgan/run/restore.py; re-exported here,
# where callers have always found it.
from jaxgan.run.restore import evaluate_checkpoint, restore_for_sampling  # noqa: E402,F401
