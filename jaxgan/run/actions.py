"""What the training loop does between steps, as a list of small periodic actions.

The shape of clu's `periodic_actions`: each action has an interval (`every`, 0 = only at
the end) and is called with the loop's shared `Loop` record after every step and once at
the end. The loop itself (jaxgan/run/train.py) only steps and asks each action in turn, so a
single run and a population get the same logging, grids, evaluation, best checkpoint,
non-finite stop, TensorBoard and progress bar. Members of a population are views of the
stacked state (`Loop.member_state`), each writing into its own directory.

Order matters and is fixed by `default_actions`: logging (which checks the window for
non-finite values) before grids, evaluation before the checkpoint that records its score.
"""
from __future__ import annotations

import abc
import dataclasses
import functools
import time
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.base import errors, rng
from jaxgan.eval import overfitting, posthoc_ema, sampling, visualize
from jaxgan.core import state as state_lib


NonFiniteError = errors.NonFiniteError


class MemberView(Protocol):
  """One trial of the run as the actions see it (train.Member): its name ('' for a single
  run), config, directory and metric writer."""
  name: str
  config: Any
  workdir: str
  writer: Any     # jaxgan.run.writers.MetricWriter


class RunView(Protocol):
  """All the actions may know of the training run (train.Run implements it): what it
  trains, who writes, and the three things they ask of it."""
  gan: state_lib.GAN
  config: Any
  members: Sequence[MemberView]
  population: bool    # the state and metrics stack the members on a leading axis
  is_main: bool       # this process writes files
  total: int          # config.train.steps

  def epoch(self, member: int, step: int) -> float:
    """Epochs of member `member`'s data seen after `step` steps."""

  def latest_checkpoint(self) -> Optional[int]:
    """The step of the newest checkpoint, or None."""

  def save(self, step: int, state, evals: Optional[List[dict]], final: bool) -> None:
    """Checkpoints `state` at `step` (with its evaluations, for the best checkpoint)."""


@dataclasses.dataclass
class Loop:
  """What the actions share: the run, the metric window, results."""
  run: RunView
  start: int
  window: List = dataclasses.field(default_factory=list)   # (step, host metrics), checked
  pending: List = dataclasses.field(default_factory=list)  # (step, device metrics, k)
  evals: Dict[int, List[dict]] = dataclasses.field(default_factory=dict)  # step -> per member
  last_saved: Optional[int] = None
  preempted: Optional[int] = None
  eval_seconds: float = 0.0     # spent in Evaluate (train.max_seconds does not count it)

  def member_state(self, state, i: int):
    return jax.tree.map(lambda x: x[i], state) if self.run.population else state

  def member_metrics(self, metrics, i: int):
    return {k: v[i] for k, v in metrics.items()} if self.run.population else metrics

  def add(self, step: int, metrics, k: int = 0):
    """The device metrics of step `step`, or (k > 0) of the k steps from `step` stacked on
    a leading axis (one call of train.steps_per_call steps)."""
    self.pending.append((step, metrics, k))

  def check_window(self):
    """Pulls the pending metrics to the host, one row per step, into the window; stops at
    the first non-finite value, before it can reach a checkpoint or a log row."""
    rows = _fetch(self.pending)
    self.pending = []
    self.window += rows
    for step, m in rows:
      for i, member in enumerate(self.run.members):
        mm = self.member_metrics(m, i)
        bad = sorted(k for k, v in mm.items() if k != "params_finite"
                     and not np.all(np.isfinite(v)))
        if not bool(mm.get("params_finite", True)):
          bad = ["parameters of G or D"] + bad
        if bad:
          self._nonfinite(step, ", ".join(bad), member.name)

  def _nonfinite(self, step, what, member):
    latest = self.run.latest_checkpoint()
    kept = (f"the latest checkpoint (step {latest}) holds the last good state"
            if latest is not None else "no checkpoint had been written yet")
    who = f" in population member {member}" if member else ""
    raise NonFiniteError(
        f"Non-finite {what} at step {step}{who} (in the update from step {step} to "
        f"{step + 1}). Training stopped; {kept}. Lower the learning rates, add a "
        "regularizer, or check the data.")


@functools.partial(jax.jit, static_argnums=1)
def _concatenated(metrics: List[dict], ks: Tuple[int, ...]) -> dict:
  """Each metric of all the pending calls as one array, steps on the leading axis."""
  return {n: jnp.concatenate([m[n] if k else m[n][None] for m, k in zip(metrics, ks)])
          for n in metrics[0]}


def _fetch(pending: List) -> List:
  """[(step, host metrics)] of the pending calls [(step, device metrics, k)]. Pulling
  thousands of scalars one array at a time took ~2 ms each on the CPU (2.3 s per log row
  of 100 steps with jax 0.12.1); concatenated on the device they come in one transfer
  per metric."""
  if not pending:
    return []
  metrics, ks = [m for _, m, _ in pending], tuple(k for _, _, k in pending)
  if any(m.keys() != metrics[0].keys() for m in metrics):   # not one layout: one by one
    host = jax.device_get(metrics)
    return [row for (step, _, k), m in zip(pending, host)
            for row in ([(step + i, {n: v[i] for n, v in m.items()}) for i in range(k)]
                        if k else [(step, m)])]
  host = jax.device_get(_concatenated(metrics, ks))
  rows, at = [], 0
  for step, _, k in pending:
    for i in range(max(k, 1)):
      rows.append((step + i, {n: v[at + i] for n, v in host.items()}))
    at += max(k, 1)
  return rows


class Action(abc.ABC):
  """Called after every step with the number of steps done; `end` runs once at the end."""
  every = 0

  def due(self, step: int) -> bool:
    return bool(self.every) and step % self.every == 0

  def __call__(self, loop: Loop, step: int, state) -> None:
    if self.due(step):
      self.run(loop, step, state)

  @abc.abstractmethod
  def run(self, loop: Loop, step: int, state) -> None:
    """The periodic work."""

  def end(self, loop: Loop, step: int, state) -> None:
    del loop, step, state

  def close(self) -> None:
    """Releases what the action holds, also when the loop stops on an error."""


class Progress(Action):
  """A tqdm bar on process 0 with the latest losses."""

  def __init__(self, total: int, start: int):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
    self.last = start

  def __call__(self, loop, step, state):
    self.bar.update(step - self.last)   # a call may run several steps
    self.last = step

  def run(self, loop, step, state):
    self.bar.refresh()

  def show(self, row: dict):
    keys = [k for k in row if k.endswith("_loss")][:3] + ["d_x", "d_g_z"]
    self.bar.set_postfix({k: f"{row[k]:.3f}" for k in keys if k in row}, refresh=False)

  def close(self):
    self.bar.close()


class LogMetrics(Action):
  """Every `every` steps: the window's mean as one row of each member's metrics.jsonl and
  TensorBoard, with the epoch, steps/s and learning rates; D-output histograms; and, with
  a held-out probe (jaxgan/eval/overfitting.py), D's outputs on training and held-out reals."""

  def __init__(self, every: int, progress: Optional[Progress] = None, probe=None):
    self.every, self.progress, self.probe = every, progress, probe
    self.t_last, self.steps_last = time.perf_counter(), None

  def run(self, loop, step, state):
    loop.check_window()
    if not loop.window:
      return
    now = time.perf_counter()
    first = loop.window[0][0] if self.steps_last is None else self.steps_last
    rate = (step - first) / max(now - self.t_last, 1e-9)
    self.t_last, self.steps_last = now, step
    for i, member in enumerate(loop.run.members):
      ms = [loop.member_metrics(m, i) for _, m in loop.window]
      row = {"epoch": round(loop.run.epoch(i, step), 4)}
      row.update({k: float(np.mean([m[k] for m in ms])) for k in ms[-1]
                  if k != "params_finite" and not k.startswith("hist_")})
      row.update(steps_per_s=rate)
      row.setdefault("lr_g", member.config.optim.g.lr)   # scheduled ones are step metrics
      row.setdefault("lr_d", member.config.optim.d.lr)
      if self.probe is not None:
        row.update(self.probe(loop.member_state(state, i)))
      member.writer.row(step, row)
      member.writer.histograms(step, {"d_output/real": ms[-1]["hist_d_real"],
                                      "d_output/fake": ms[-1]["hist_d_fake"]})
      if i == 0 and self.progress is not None:
        self.progress.show(row)
    loop.window = []

  def end(self, loop, step, state):
    self.run(loop, step, state)


class SampleGrids(Action):
  """Every `every` steps (and at steps 0 and the end): each member's fixed-noise grid as
  DIR/samples/step_NNNNNNN.png and in TensorBoard."""

  def __init__(self, every: int, run: RunView):
    self.every, self.done = every, set()
    gan = run.gan
    self.gen = sampling.generator_fn(gan)
    self.inputs = [sampling.grid_inputs(gan, m.config.sample.grid_size,
                                        rng.stream(rng.root_key(m.config.seed), "fixed_noise"))
                   for m in run.members]

  def run(self, loop, step, state):
    if step in self.done:
      return
    self.done.add(step)
    gan = loop.run.gan
    for i, member in enumerate(loop.run.members):
      st = loop.member_state(state, i)
      z, labels = self.inputs[i]
      imgs = visualize.to_uint8(self.gen(state_lib.sampling_params(st), st.g.stats, z, labels))
      if not loop.run.is_main:
        continue
      ncol = gan.num_classes if labels is not None else member.config.sample.grid_cols or None
      visualize.save_grid(imgs, f"{member.workdir}/samples/step_{step:07d}.png", ncol)
      member.writer.image(step, "samples/fixed_noise", visualize.grid(imgs, ncol))

  def end(self, loop, step, state):
    if loop.preempted is None:
      self.run(loop, step, state)


class Evaluate(Action):
  """Every `eval.every` steps and at the end: the configured metrics of each member's
  generator (jaxgan/eval/metrics), into metrics.jsonl as eval/* and one printed line."""

  def __init__(self, every: int, evaluator, say):
    self.every, self.evaluator, self.say = every, evaluator, say

  def run(self, loop, step, state):
    if step in loop.evals:
      return
    loop.check_window()
    t0, results = time.perf_counter(), []
    for i, member in enumerate(loop.run.members):
      result = self.evaluator.evaluate_generator(
          loop.run.gan, loop.member_state(state, i), member.config.eval.num_samples,
          rng.stream(rng.root_key(member.config.seed), "eval"))
      member.writer.row(step, {f"eval/{k}" if isinstance(v, (int, float)) else k: v
                               for k, v in result.items()})
      name = f"{member.name}: " if member.name else ""
      self.say(f"step {step}: {name}{self.evaluator.summary(result)}")
      results.append(result)
    loop.evals[step] = results
    loop.eval_seconds += time.perf_counter() - t0

  def end(self, loop, step, state):
    if loop.preempted is None and step != loop.last_saved:
      self.run(loop, step, state)


class PosthocSnapshots(Action):
  """Post-hoc EMA (config.phema): each member's power-function EMA profiles saved as a
  snapshot (jaxgan/eval/posthoc_ema.py) whenever G's images cross a multiple of
  phema.snapshot_images (0: at every checkpoint_every), labelled with the exact image
  count, and at the end. Runs before Checkpoint, so every snapshot up to a checkpoint
  exists when the checkpoint does; a resume rewrites later ones identically."""

  def __init__(self, run: RunView):
    cfg = run.config
    self.batch, self.sigma_rels = int(cfg.data.batch_size), tuple(cfg.phema.sigma_rels)
    self.interval = int(cfg.phema.snapshot_images) or self.batch * int(
        cfg.train.checkpoint_every)
    self.last, self.saved = None, None   # the step of the previous call, of the last save

  def __call__(self, loop, step, state):
    last = loop.start if self.last is None else self.last
    if step * self.batch // self.interval > last * self.batch // self.interval:
      self.run(loop, step, state)
    self.last = step

  def run(self, loop, step, state):
    loop.check_window()   # never save profiles of a step that was not checked finite
    profiles = jax.device_get(state.phema)
    for i, member in enumerate(loop.run.members):
      if loop.run.is_main:
        mine = jax.tree.map(lambda x: x[i], profiles) if loop.run.population else profiles
        posthoc_ema.write(member.workdir, step, step * self.batch, self.sigma_rels, mine)
    self.saved = step

  def end(self, loop, step, state):
    if loop.preempted is None and self.saved != step and step > loop.start:
      self.run(loop, step, state)   # the end of training: the target of reconstructions


class Checkpoint(Action):
  """Every `checkpoint_every` steps, after each evaluation and at the end: the whole state
  (a population: stacked), and for a population each member's own state where it was
  evaluated, so every member keeps its best checkpoint."""

  def __init__(self, every: int):
    self.every = every

  def __call__(self, loop, step, state):
    if (self.due(step) or step in loop.evals) and step != loop.run.total:
      self.run(loop, step, state)

  def run(self, loop, step, state, final: bool = False):
    loop.check_window()  # never checkpoint a state whose steps were not all checked
    if step == loop.last_saved:
      return
    loop.run.save(step, state, loop.evals.get(step), final=final)
    loop.last_saved = step

  def end(self, loop, step, state):
    self.run(loop, step, state, final=True)


def default_actions(run: RunView, start: int, evaluator, say) -> List[Action]:
  cfg = run.config.train
  progress = Progress(run.total, start) if cfg.progress and run.is_main else None
  actions: List[Action] = [progress] if progress else []
  probe = overfitting.make_probe(run, evaluator, say)
  actions += [LogMetrics(cfg.log_every, progress, probe), SampleGrids(cfg.sample_every, run)]
  if evaluator is not None:
    actions.append(Evaluate(run.config.eval.every, evaluator, say))
  if run.config.phema.sigma_rels:
    actions.append(PosthocSnapshots(run))
  actions.append(Checkpoint(cfg.checkpoint_every))
  return actions
