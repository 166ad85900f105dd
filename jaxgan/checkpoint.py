"""Orbax checkpoints of the whole run: the TrainState plus JSON metadata.

Saves are asynchronous (training continues while the previous step is written) and
atomic: Orbax writes into a temporary directory and renames it only once complete, so a
crash mid-write leaves the previous checkpoint as the latest (the leftover temporary
directory is removed at the next start). The last `keep` checkpoints are kept, plus the
best one by `best_metric` when checkpoints are saved with metrics.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp


class Checkpointer:
  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True,
               best_metric: str = "", best_mode: str = "min"):
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
        create=True, enable_async_checkpointing=async_save, cleanup_tmp_directories=True,
        preservation_policy=pp.AnyPreservationPolicy(policies))
    self.manager = ocp.CheckpointManager(self.directory, options=options)

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
    scored = []
    for step in self.all_steps():
      meta = self.read_meta(step)
      value = (meta.get("eval") or {}).get(self.best_metric)
      if value is not None:
        scored.append((value if self.best_mode == "min" else -value, step))
    return min(scored)[1] if scored else None

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
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    out = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return out.state, dict(out.meta)

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
