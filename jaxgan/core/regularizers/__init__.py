"""Regularizers of D or G, as a list in the config: `config.regularizers`.

Each entry is `{name, weight, every, side, **options}` (or just a name):

  name    a registered regularizer (every module of this package registers its own)
  weight  multiplies the (unweighted) term; default: the regularizer's own
  every   lazy regularization (Karras et al. 2020, StyleGAN2 sec. 3.1): the term is
          computed on every k-th update of its network only, with weight x k
  side    "d" (added to D's loss in every critic update) or "g" (to G's loss)
  options regularizer-specific settings (e.g. path length's `decay`), with defaults

`config.penalty` / `config.penalty_weight` remain a shorthand for one D-side entry.

A regularizer is `fn(ctx) -> (value, new_state)`. `ctx` (a `Context`) gives what a term
may need: the discriminator as a function of images (`critic`, the same path as the loss:
augmentation included, gradients w.r.t. the images it is given), the real and generated
batches and their logits, the generator as a function of latents, its key, its options and
its state. State (path length's running mean, LeCam's anchors) lives in
`TrainState.reg[name]`: saved, restored and stacked in populations like everything else.

Lazy terms are added to the loss of the step they run in (scaled by `every`) instead of a
separate optimizer step as in StyleGAN2's phases: one compiled step, the same expected
gradient. Their metric is value x every on the steps they run and 0 otherwise, so its mean
over a log window (a multiple of `every`) is the term's mean.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxgan.base import sizes
from jaxgan.base.registry import Registry, import_all

Array = jax.Array


class Context(NamedTuple):
  """What a regularizer sees. D side: critic, real, fake, real_logits, fake_logits, and
  generate (G at its current weights, no gradient) with the z of `fake`. G side: generate,
  z, fake, fake_logits, labels, and apply_g(fn) = fn(G at its current weights), for terms
  that need G's parts (the path-length penalty: StyleGAN2's map and synthesize). Both:
  key, options, state, and params (the network's own parameters, for terms on the
  weights such as orthogonal regularization)."""
  key: Array
  options: Dict[str, Any]
  state: Any = None
  critic: Optional[Callable[[Array], Array]] = None
  real: Optional[Array] = None
  fake: Optional[Array] = None
  real_logits: Optional[Array] = None
  fake_logits: Optional[Array] = None
  generate: Optional[Callable[[Array], Array]] = None
  z: Optional[Array] = None
  params: Any = None      # the parameters of the side's own network (being differentiated)
  labels: Optional[Array] = None
  apply_g: Optional[Callable[[Callable], Any]] = None
  # D side: D through exactly the path (augmentation, D's randomness) that gave
  # real_logits / fake_logits, for finite-difference terms that compare with them
  critic_real: Optional[Callable[[Array], Array]] = None
  critic_fake: Optional[Callable[[Array], Array]] = None
  # D side, for alignment terms (GAT's REPA): D's representation of the real batch on
  # that same path (GAN.represent), the real batch as images in [-1, 1] (a latent batch
  # decoded), and that path's geometric augmentation replayed on another view of it
  represent_real: Optional[Callable[[], Any]] = None
  real_images: Optional[Callable[[], Array]] = None
  replay_geometry: Optional[Callable[[Array], Array]] = None


class Regularizer(NamedTuple):
  fn: Callable[[Context], Tuple[Array, Any]]
  sides: Tuple[str, ...] = ("d",)
  weight: float = 1.0                 # default weight
  options: Dict[str, Any] = {}        # option name -> default
  init_state: Optional[Callable[[], Any]] = None
  per_example: bool = False           # needs per-example input gradients (no BatchNorm D)
  # the weights files its computation reads (a frozen encoder), from its options: the
  # traced program holds their contents, so the run does not cache it (run/train.py)
  files: Optional[Callable[[Dict[str, Any]], List[str]]] = None


REGULARIZERS: Registry[Regularizer] = Registry("regularizer", "config.regularizers")


class Entry(NamedTuple):
  """One resolved entry of the list."""
  name: str
  weight: float
  every: int
  side: str
  options: Dict[str, Any]
  reg: Regularizer
  stream: str        # name of its random stream ("penalty" for the shorthand, as before)
  auto: bool = False  # weight "auto": chosen by the heuristic (auto_gamma)

  @property
  def hparam(self) -> str:
    """Key of the weight in TrainState.hparams (a population may vary it)."""
    return f"reg/{self.name}"


AUTO_RULE = "0.0002 * height * width / batch_size"
AUTO_NAMES = ("r1", "r2")


def auto_gamma(image_size, batch_size: int) -> float:
  """StyleGAN2-ADA's heuristic R1 gamma (Karras et al. 2020; NVlabs/stylegan2-ada-pytorch,
  train.py, cfg 'auto': spec.gamma = 0.0002 * res ** 2 / spec.mb): 0.0002 x the pixels of
  an image, / the batch. `image_size` is the side, or (height, width). Its R1 is
  gamma / 2 x the penalty, and so is ours with weight gamma (gradient_penalties.py)."""
  h, w = sizes.hw(image_size)
  return 0.0002 * h * w / batch_size


def _weight(spec, reg, name, where, config):
  raw = spec.pop("weight", reg.weight)
  if isinstance(raw, str) and raw.strip().lower() == "auto":
    if name not in AUTO_NAMES:
      raise ValueError(f"{where}: 'weight': 'auto' is StyleGAN2-ADA's R1 heuristic, for "
                       f"{' and '.join(AUTO_NAMES)} only, not {name!r}; give a number.")
    if config is None:
      raise ValueError(f"{where}: 'weight': 'auto' needs the config's image and batch size.")
    return auto_gamma(config.data.image_size, int(config.data.batch_size)), True
  try:
    return float(raw), False
  except (TypeError, ValueError):
    raise ValueError(f"{where}: 'weight' of {name!r} must be a number or 'auto' (r1/r2: "
                     f"{AUTO_RULE}), got {raw!r}.") from None


def _entry(raw, where: str, stream: str = "", config=None) -> Entry:
  spec = {"name": raw} if isinstance(raw, str) else dict(raw)
  name = spec.pop("name", None)
  if name is None:
    raise ValueError(f"{where}: every entry needs a 'name', got {raw!r}.")
  if name not in REGULARIZERS:
    raise ValueError(f"{where}: unknown regularizer {name!r}; valid: "
                     f"{', '.join(REGULARIZERS.names())}.")
  reg = REGULARIZERS.get(name)
  weight, auto = _weight(spec, reg, name, where, config)
  every = int(spec.pop("every", 1))
  side = str(spec.pop("side", reg.sides[0])).lower()
  unknown = sorted(set(spec) - set(reg.options))
  if unknown:
    valid = ", ".join(["name", "weight", "every", "side", *reg.options])
    raise ValueError(f"{where}: regularizer {name!r} has no option(s) {', '.join(unknown)}; "
                     f"valid keys: {valid}.")
  if side not in reg.sides:
    raise ValueError(f"{where}: regularizer {name!r} acts on side(s) "
                     f"{', '.join(reg.sides)}, not {side!r}.")
  if not weight >= 0:   # also refuses NaN
    raise ValueError(f"{where}: 'weight' of {name!r} must be >= 0, got {weight}; a negative "
                     "weight would reward what the term penalises.")
  if every < 1:
    raise ValueError(f"{where}: 'every' of {name!r} must be >= 1, got {every}.")
  return Entry(name, weight, every, side, {**reg.options, **spec}, reg,
               stream or f"reg/{name}", auto)


def resolve(config) -> List[Entry]:
  """The regularizers a config asks for: `config.regularizers` plus the `penalty`
  shorthand ('clip' is not a regularizer but D's weight projection, see jaxgan/core/optim.py)."""
  entries = [_entry(r, "config.regularizers", config=config) for r in config.regularizers]
  if config.penalty not in ("none", "clip"):
    entries.append(_entry({"name": config.penalty, "weight": config.penalty_weight,
                           "side": "d"}, "config.penalty", stream="penalty", config=config))
  names = [e.name for e in entries]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    raise ValueError(f"Regularizer(s) {', '.join(dup)} listed twice (config.regularizers and "
                     "config.penalty together?); give each once.")
  return entries


def frozen_files(entries: List[Entry]) -> Dict[str, List[str]]:
  """{regularizer: [path, ...]} of the weights files the entries' terms read."""
  return {e.name: e.reg.files(e.options) for e in entries if e.reg.files is not None}


def init_states(entries: List[Entry]) -> Dict[str, Any]:
  return {e.name: e.reg.init_state() for e in entries if e.reg.init_state is not None}


def apply(entries: List[Entry], side: str, counter, hparams, states, make_ctx,
          active=None) -> Tuple[Array, Dict[str, Any], Dict[str, Array]]:
  """Sum of the weighted terms of one side, their new states and metrics.

  `counter` counts this side's updates (lazy terms run where counter % every == 0);
  `make_ctx(entry, state)` builds an entry's Context. `active`, when given, is the set of
  lazy terms that run in this update, known when the step is traced (the training loop
  compiles one step per pattern: a lax.cond around a term differentiated twice made the
  step slower on CPU than computing the term every time); else a lax.cond on `counter`."""
  total = jnp.zeros((), jnp.float32)
  new_states, metrics = dict(states), {}
  for e in entries:
    if e.side != side:
      continue
    state = states.get(e.name)

    def run(state, e=e):
      value, new_state = e.reg.fn(make_ctx(e, state))
      return jnp.asarray(value, jnp.float32), new_state

    if e.every == 1:
      value, state = run(state)
    elif active is not None:  # lazy, with this update's pattern fixed at trace time
      value, state = run(state) if e.name in active else (jnp.zeros((), jnp.float32), state)
      value = value * e.every
    else:  # lazy: only every k-th update computes the term; weight x k there
      now = counter % e.every == 0
      skip = lambda s: (jnp.zeros((), jnp.float32), s)
      value, state = jax.lax.cond(now, run, skip, state)
      value = value * e.every
    total = total + hparams[e.hparam] * value
    metrics[e.name] = value
    if e.name in states:
      new_states[e.name] = state
  return total, new_states, metrics


import_all(__name__, __path__)
