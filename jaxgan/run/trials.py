"""The trials of a sweep, as data: override dicts built with `product` (a grid) and `zip_`
(paired lists), read from a config file's `sweep()`, applied to a config, named, and split
between the machines of a cluster (`select`). Running them is jaxgan/run/sweep.py; training
them together as a population is jaxgan/run/population.py."""
from __future__ import annotations

import importlib.util
import itertools
import re
from typing import Dict, List, Optional, Sequence, Tuple

from jaxgan import config as config_lib
from jaxgan.base.errors import UserError

Trial = Dict[str, object]


def product(**axes: Sequence) -> List[Trial]:
  """The Cartesian grid of the given fields' values (last field varies fastest)."""
  keys = list(axes)
  return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


def zip_(**axes: Sequence) -> List[Trial]:
  """Trials pairing the i-th values of every field (all lists of one length)."""
  lens = {len(v) for v in axes.values()}
  if len(lens) != 1:
    raise UserError(f"zip_ needs lists of one length, got lengths {sorted(lens)}.")
  return [dict(zip(axes, vals)) for vals in zip(*axes.values())]


def seeds(values: Sequence[int]) -> List[Trial]:
  return [{"seed": int(s)} for s in values]


def parse_seeds(text: str) -> List[int]:
  try:
    return [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise UserError(f"--seeds takes comma-separated integers, e.g. 0,1,2,3; got {text!r}.") from None


def load_trials(config_path: str) -> List[Trial]:
  """The trials of a config file's `sweep()` function."""
  path = config_path.split(":")[0]
  spec = importlib.util.spec_from_file_location("jaxgan_sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "sweep"):
    raise UserError(f"{path} defines no sweep() function; add one returning a list of "
                     "override dicts (see jaxgan/run/sweep.py), or use --seeds 0,1,2.")
  trials = list(module.sweep())
  if not trials:
    raise UserError(f"{path}: sweep() returned no trials.")
  return trials


def select(trials: List[Trial], trial_index: Optional[int] = None, num_shards: int = 1,
           shard_index: int = 0) -> List[Tuple[int, Trial]]:
  """(index, trial) pairs this process trains: trial `trial_index` alone, or the shard
  `shard_index` of `num_shards` taken round-robin (so a grid's seeds spread over shards and
  every shard gets a similar mix of trials). The shards cover every trial exactly once."""
  n = len(trials)
  if trial_index is not None:
    if num_shards != 1 or shard_index != 0:
      raise UserError("--trial_index with --num_shards/--shard_index: give one way of "
                      "choosing trials (--trial_index I is one trial; shards are slices).")
    if not 0 <= trial_index < n:
      raise UserError(f"--trial_index={trial_index}: this sweep has {n} trials; choose "
                      f"0..{n - 1} (a SLURM array 0-{n - 1}).")
    return [(trial_index, trials[trial_index])]
  if num_shards < 1:
    raise UserError(f"--num_shards={num_shards}: must be >= 1.")
  if not 0 <= shard_index < num_shards:
    raise UserError(f"--shard_index={shard_index}: choose 0..{num_shards - 1} for "
                    f"--num_shards={num_shards}.")
  return [(i, t) for i, t in enumerate(trials) if i % num_shards == shard_index]


def apply(config, overrides: Trial):
  """A copy of `config` with dotted-field overrides; unknown fields are errors."""
  c = config_lib.resolved_copy(config)
  for k, v in overrides.items():
    node = c
    parts = k.split(".")
    for p in parts[:-1]:
      if p not in node:
        raise UserError(f"Sweep field {k!r} does not exist in the config; see "
                        "configs/default.py for the fields.")
      node = node[p]
    if parts[-1] not in node:
      raise UserError(f"Sweep field {k!r} does not exist in the config.")
    node[parts[-1]] = type(node[parts[-1]])(v) if isinstance(node[parts[-1]], float) else v
  return c


def trial_name(overrides: Trial) -> str:
  """A directory name that says what the trial overrides: 'optim.d.lr=0.0001,seed=2'."""
  if not overrides:
    return "base"
  text = ",".join(f"{k}={v}" for k, v in overrides.items())
  return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def group_name(overrides: Trial) -> str:
  return trial_name({k: v for k, v in overrides.items() if k != "seed"})
