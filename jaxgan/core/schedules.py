"""Hyperparameters that change over training: `config.schedules`.

Each entry is `{target, kind, end, steps}`: the target's value moves from its configured
value (the start) to `end` over the first `steps` generator updates, along `kind`, and
stays at `end` afterwards:

  linear   start + f (end - start)                        f = min(step / steps, 1)
  cosine   start + (1 - cos(pi f)) / 2 (end - start)      (R3GAN's schedules, Huang et
           al. 2024: lr 2e-4 -> 5e-5, Adam beta2 0.9 -> 0.99, gamma 0.05 -> 0.005, EMA
           half-life 0 -> 5,000 kimg over the run)
  cosine_rsqrt  cosine until `steps`, then end / sqrt(step / steps) (R3GAN2's learning
           rate, IFeelBloated/R3GAN2@3b04752d: 1e-2 -> 1e-3 over 2e7 images, then decaying
           as 1/sqrt(t))
  edm2     start / sqrt(max(step / steps, 1)): constant, then 1/sqrt(t) after `steps`
           (EDM2's learning rate, Karras et al. 2024, Eq. 16; `end` is not used)

An entry may add `warmup` (steps): the value is then multiplied by min(step / warmup, 1),
a linear ramp from 0 (EDM2's learning-rate ramp-up; 0 at the first update, as EDM2's
t = images seen before it).

Targets: `optim.g.lr`, `optim.d.lr`, `optim.g.b2`, `optim.d.b2` (Adam), `ema_halflife_kimg`
(the EMA generator's half-life in thousands of images), `augment.p` (ADA's probability,
with augment.ada_target=0: R3GAN raises it 0 -> 0.55 instead of adapting it), and
`regularizers.NAME` (the weight of a regularizer of the list, e.g. `regularizers.r1`).

A schedule is a pure function of the step and of the start value, which the train state
keeps in `TrainState.hparams` ("sched/<target>", the regularizer's own "reg/NAME"): a
resumed run continues the same curve bit for bit, and population members may start from
different values. The scheduled optimizer hyperparameters are written into the injected
hyperparameters of the optimizer state (jaxgan/core/optim.py) before each update, so the logged
`lr_g` / `lr_d` are the values in use.
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple

import jax
import jax.numpy as jnp

from jaxgan.base.errors import UserError
from jaxgan.base.registry import Registry

Array = jax.Array

KINDS: Registry = Registry("schedule kind", "config.schedules[].kind")


def _cosine(start, end, u):
  return start + 0.5 * (1.0 - jnp.cos(math.pi * jnp.minimum(u, 1.0))) * (end - start)


# kind: (start, end, u = step / steps, unclipped) -> value
KINDS.register("linear", lambda start, end, u: start + jnp.minimum(u, 1.0) * (end - start))
KINDS.register("cosine", _cosine)
KINDS.register("cosine_rsqrt", lambda start, end, u: jnp.where(
    u <= 1.0, _cosine(start, end, u), end * jax.lax.rsqrt(jnp.maximum(u, 1.0))))
KINDS.register("edm2", lambda start, end, u: start * jax.lax.rsqrt(jnp.maximum(u, 1.0)))
NO_END = ("edm2",)     # kinds whose `end` is not used

OPTIM_TARGETS = {"optim.g.lr": ("g", "learning_rate"), "optim.d.lr": ("d", "learning_rate"),
                 "optim.g.b2": ("g", "b2"), "optim.d.b2": ("d", "b2")}
EMA_TARGET = "ema_halflife_kimg"
AUGMENT_TARGET = "augment.p"
KEYS = ("target", "kind", "end", "steps", "warmup")
OPTIONAL = ("kind", "warmup")


class Schedule(NamedTuple):
  target: str
  kind: str
  end: float
  steps: int
  warmup: int = 0

  @property
  def hparam(self) -> str:
    """Key of the start value in TrainState.hparams."""
    if self.target.startswith("regularizers."):
      return "reg/" + self.target.split(".", 1)[1]
    return "sched/" + self.target


def value_at(kind: str, start, end, steps: int, step, warmup: int = 0) -> Array:
  """The scheduled value at `step` (generator updates done before this one)."""
  t = jnp.maximum(jnp.asarray(step, jnp.float32), 0.0)
  value = KINDS.get(kind)(jnp.asarray(start, jnp.float32), jnp.float32(end), t / float(steps))
  if warmup:
    value = value * jnp.minimum(t / float(warmup), 1.0)
  return value


def _entry(raw, i: int) -> Schedule:
  where = f"config.schedules[{i}]"
  if not isinstance(raw, dict):
    raise UserError(f"{where}={raw!r}: each schedule is a dict {{target, kind, end, steps}}.")
  kind = raw.get("kind", "cosine")
  unknown = sorted(set(raw) - set(KEYS))
  missing = [k for k in KEYS if k not in raw and k not in OPTIONAL
             and not (k == "end" and kind in NO_END)]
  if unknown or missing:
    raise UserError(f"{where}: unknown key(s) {unknown}, missing {missing}; a schedule has "
                    f"the keys {', '.join(KEYS)} (kind defaults to 'cosine'; warmup to 0).")
  if kind not in KINDS:
    raise UserError(f"{where}.kind={kind!r}: valid kinds are {', '.join(KINDS.names())}.")
  try:
    end, steps = float(raw.get("end", 0.0)), int(raw["steps"])
    warmup = int(raw.get("warmup", 0))
  except (TypeError, ValueError):
    raise UserError(f"{where}: 'end' takes a number, 'steps' and 'warmup' integers; got "
                    f"{raw.get('end')!r}, {raw['steps']!r} and {raw.get('warmup')!r}.") from None
  if steps < 1 or warmup < 0 or not math.isfinite(end):
    raise UserError(f"{where}: 'steps' must be >= 1, 'warmup' >= 0 and 'end' finite; got "
                    f"steps={steps}, warmup={warmup}, end={end}.")
  return Schedule(str(raw["target"]), kind, end, steps, warmup)


def _check_target(s: Schedule, config, reg_names) -> None:
  where = f"config.schedules target {s.target!r}"
  if s.target in OPTIM_TARGETS:
    net, name = OPTIM_TARGETS[s.target]
    if name == "b2" and config.optim[net].name != "adam":
      raise UserError(f"{where}: beta2 is Adam's; config.optim.{net}.name is "
                      f"{config.optim[net].name!r}.")
    if s.kind in NO_END:
      pass
    elif (name == "learning_rate" and s.end <= 0) or (name == "b2" and not 0 <= s.end < 1):
      raise UserError(f"{where}: end={s.end} is out of range (lr > 0, 0 <= b2 < 1).")
  elif s.target == EMA_TARGET:
    if s.end < 0:
      raise UserError(f"{where}: end={s.end} must be >= 0 (thousands of images).")
  elif s.target == AUGMENT_TARGET:
    from jaxgan.core import augment  # pylint: disable=g-import-not-at-top
    if not augment.uses_p(config.augment.policy) or config.augment.ada_target > 0:
      raise UserError(f"{where}: a schedule of p needs augment.policy='ada' with "
                      "augment.ada_target=0 (p then follows the schedule instead of "
                      "adapting to D's outputs).")
    if not 0 <= s.end <= 1:
      raise UserError(f"{where}: end={s.end} must be in [0, 1].")
  elif s.target.startswith("regularizers."):
    name = s.target.split(".", 1)[1]
    if name not in reg_names:
      raise UserError(f"{where}: no regularizer {name!r} in the list (config.regularizers / "
                      f"config.penalty); present: {', '.join(reg_names) or 'none'}.")
    if s.end < 0:
      raise UserError(f"{where}: end={s.end} must be >= 0.")
  else:
    valid = list(OPTIM_TARGETS) + [EMA_TARGET, AUGMENT_TARGET, "regularizers.NAME"]
    raise UserError(f"{where} is not schedulable; valid targets: {', '.join(valid)}.")


def resolve(config) -> List[Schedule]:
  """The config's schedules, checked (raises UserError naming the entry and the fix)."""
  from jaxgan.core import regularizers  # pylint: disable=g-import-not-at-top
  out = [_entry(raw, i) for i, raw in enumerate(config.schedules)]
  reg_names = [e.name for e in regularizers.resolve(config)] if out else []
  targets = [s.target for s in out]
  for s in out:
    if targets.count(s.target) > 1:
      raise UserError(f"config.schedules: target {s.target!r} is listed twice; give it once.")
    _check_target(s, config, reg_names)
  return out


def uses_halflife(config, schedules: List[Schedule]) -> bool:
  """Whether the EMA generator follows a half-life (config.ema_halflife_kimg or its
  schedule) instead of config.ema_decay."""
  return config.get(EMA_TARGET, 0.0) > 0 or any(s.target == EMA_TARGET for s in schedules)


def start_values(config, schedules: List[Schedule]) -> Dict[str, Array]:
  """The hparams entries that hold each schedule's start (regularizers have theirs) and
  the EMA half-life when one is used."""
  out = {}
  for s in schedules:
    if s.target in OPTIM_TARGETS:
      net, name = OPTIM_TARGETS[s.target]
      out[s.hparam] = jnp.float32(config.optim[net]["lr" if name == "learning_rate" else name])
    elif s.target == AUGMENT_TARGET:
      out[s.hparam] = jnp.float32(config.augment.p)
  if uses_halflife(config, schedules):
    out["sched/" + EMA_TARGET] = jnp.float32(config.get(EMA_TARGET, 0.0))
  return out


def at(schedules: List[Schedule], hparams: Dict[str, Array], step) -> Dict[str, Array]:
  """`hparams` with every scheduled entry replaced by its value at `step`."""
  hp = dict(hparams)
  for s in schedules:
    hp[s.hparam] = value_at(s.kind, hparams[s.hparam], s.end, s.steps, step, s.warmup)
  return hp


def optimizer_values(schedules: List[Schedule], hp: Dict[str, Array], net: str):
  """{injected hyperparameter name: value} for network `net` ('g' or 'd')."""
  return {OPTIM_TARGETS[s.target][1]: hp[s.hparam] for s in schedules
          if s.target in OPTIM_TARGETS and OPTIM_TARGETS[s.target][0] == net}


def metrics(schedules: List[Schedule], hp: Dict[str, Array]) -> Dict[str, Array]:
  """The scheduled values of a step, for the log: lr_g, lr_d, b2_g, b2_d,
  ema_halflife_kimg, NAME_weight."""
  out = {}
  for s in schedules:
    if s.target in OPTIM_TARGETS:
      net, name = OPTIM_TARGETS[s.target]
      out[("lr_" if name == "learning_rate" else "b2_") + net] = hp[s.hparam]
    elif s.target in (EMA_TARGET, AUGMENT_TARGET):
      out[s.target.replace(".", "_")] = hp[s.hparam]
    else:
      out[s.target.split(".", 1)[1] + "_weight"] = hp[s.hparam]
  return out


def ema_decay(hp: Dict[str, Array], batch: int, halflife: bool, step=0,
              rampup: float = 0.0) -> Array:
  """The EMA decay of this step: from the half-life in kimg when one is set
  (0.5 ** (batch / (1000 h)); h = 0 copies G's weights), else config.ema_decay. With
  `rampup` r > 0 the half-life in images is at most r x the images seen before this step
  (StyleGAN2-ADA's ema_rampup; the first step copies G)."""
  if not halflife:
    return hp["ema_decay"]
  nimg = 1000.0 * hp["sched/" + EMA_TARGET]
  if rampup:
    nimg = jnp.minimum(nimg, jnp.asarray(step, jnp.float32) * batch * rampup)
  return jnp.where(nimg > 0, 0.5 ** (batch / jnp.maximum(nimg, 1e-12)), 0.0)
