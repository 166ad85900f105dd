"""Orbax checkpoints of the whole run: the TrainState plus JSON metadata.

Saves are asynchronous (training continues while the previous step is written) and
atomic: Orbax writes into a temporary directory and renames it only once complete, so a
crash mid-write leaves the previous checkpoint as the latest. The last
`config.checkpoint.keep` checkpoints are kept.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return list(self.manager.all_steps())

  def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
    return self.manager.save(
        int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                           meta=ocp.args.JsonSave(meta)), force=force)

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
