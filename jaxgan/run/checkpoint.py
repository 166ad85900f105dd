"""Orbax checkpoints of the whole run: the TrainState plus JSON metadata.

Saves are asynchronous (training continues while the previous step is written) and
atomic: Orbax writes into a temporary directory and renames it only once complete, so a
crash mid-write leaves the previous checkpoint as the latest (the leftover temporary
directory is removed at the next start). The last `keep` checkpoints are kept, plus the
best one by `best_metric` when checkpoints are saved with metrics (Orbax tracks it).

A checkpoint whose state has another layout than today's TrainState (written by an older
version: fields added or renamed since) is restored leaf by leaf by path: leaves that
still exist are restored, new ones take the initial values of `target` (which the caller
builds from the run's config), and the ones that no longer exist are dropped.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from jaxgan.base import keypaths


def leaf_paths(tree) -> dict:
  """{'a/b/0/kernel/value': leaf} of a pytree, in Orbax's naming."""
  return {keypaths.name(p): leaf for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _handlers():
  """Which Orbax handler saves and restores each item: the state as a pytree of arrays,
  the run's meta (config, step, evaluation) as JSON."""
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  state, meta = ocp.StandardCheckpointHandler(), ocp.JsonCheckpointHandler()
  for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
    registry.add("state", args, state)
  for args in (ocp.args.JsonSave, ocp.args.JsonRestore):
    registry.add("meta", args, meta)
  return registry


class Checkpointer:
  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True,
               best_metric: str = "", best_mode: str = "min", read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.best_metric, self.best_mode = best_metric, best_mode
    policies = [pp.LatestN(n=keep)]
    if best_metric:
      if best_mode not in ("min", "max"):
        raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}.")
      policies.append(pp.BestN(get_metric_fn=lambda m: m[best_metric],
                               reverse=best_mode == "min", n=1,
                               keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        # Reading modes create nothing and remove nothing (not even half-written saves).
        create=not read_only, enable_async_checkpointing=async_save and not read_only,
        cleanup_tmp_directories=not read_only,
        best_fn=(lambda m: m[best_metric]) if best_metric else None, best_mode=best_mode,
        keep_checkpoints_without_metrics=True,
        preservation_policy=pp.AnyPreservationPolicy(policies))
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         handler_registry=_handlers())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return list(self.manager.all_steps())

  def save(self, step: int, state, meta: dict, *, metrics: Optional[dict] = None,
           force: bool = False) -> bool:
    return self.manager.save(
        int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                           meta=ocp.args.JsonSave(meta)),
        metrics=metrics, force=force)

  def best_step(self) -> Optional[int]:
    """The kept step with the best `best_metric` (None if no step has metrics)."""
    if not self.best_metric:
      return None
    scored = [s for s in self.all_steps() if self.manager.metrics(s)]
    return self.manager.best_step() if scored else None

  def read_meta(self, step: int) -> dict:
    out = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(out.meta)

  def restore(self, target, step: Optional[int] = None) -> Tuple[Any, dict]:
    """Restores into the structure, shapes and shardings of `target` (a state or an
    abstract state); returns (state, metadata)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory!r}: train first "
                              "(--mode train) with this --workdir.")
    stored = jax.tree_util.tree_leaves_with_path(self.manager.item_metadata(step)["state"])
    stored = {keypaths.name(p) for p, _ in stored}
    if stored != set(leaf_paths(target)):
      return self._restore_by_path(target, step, stored)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except ValueError as e:
      # the same leaves, another tree: a state field added since, empty here (None, such
      # as TrainState.phema without post-hoc EMA), which the stored tree lacks
      if "tree structures do not match" not in str(e):
        raise
      return self._restore_by_path(target, step, stored)
    return out.state, dict(out.meta)

  def _restore_by_path(self, target, step: int, stored: set) -> Tuple[Any, dict]:
    """A checkpoint of an older state layout, restored into `target` leaf by leaf."""
    out = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    raw = leaf_paths(out.state)
    want = leaf_paths(target)
    added, dropped = sorted(set(want) - stored), sorted(stored - set(want))
    logging.warning("Checkpoint %d in %s has an older state layout: restored by path; new "
                    "(initial values): %s; no longer used: %s", step, self.directory,
                    added, dropped)

    def pick(keys, leaf):
      value = raw.get(keypaths.name(keys))
      if value is None or np.shape(value) != np.shape(leaf):
        return leaf
      return jax.device_put(np.asarray(value, leaf.dtype), getattr(leaf, "sharding", None))
    return jax.tree_util.tree_map_with_path(pick, target), dict(out.meta)

  def newest_readable(self, target, below: int) -> Optional[int]:
    """The newest step before `below` whose metadata and state both restore, or None."""
    for step in sorted((s for s in self.all_steps() if s < below), reverse=True):
      try:
        self.read_meta(step)
        self.restore(target, step)
        return step
      except Exception:  # pylint: disable=broad-except  (any damage: try the next one)
        continue
    return None

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    # orbax starts a background clean-up of stale temporary directories when the manager
    # opens and close() does not wait for it: a process that stops soon after (a user
    # error) printed its "cannot schedule new futures after interpreter shutdown"
    # traceback on a loaded machine. Wait for it (a private method, hence the guard).
    await_cleanup = getattr(self.manager, "_maybe_await_cleanup_tmp_directory", None)
    if await_cleanup is not None:
      await_cleanup()
    self.manager.close()
