"""Architectures, keyed by `config.model.arch`; every module of this package registers one.

An architecture is an `Architecture(build, fields)`: `build(model_config, image_shape,
num_classes, rngs) -> (G, D)`, and `fields`, the block of config fields it reads from
`config.model.<name>` (merged into the config schema, jaxgan/config.py). G(z, labels,
train=...) returns images in [-1, 1] (NHWC); D(x, labels, train=..., rngs=key) returns (one
logit per example, class logits or None). A new architecture is one new file here that
calls `ARCHITECTURES.register(name, Architecture(...))` (see docs/extending.md).
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Tuple

from flax import nnx

from jaxgan.core.models.layers import check_conditioning
from jaxgan.base import keypaths
from jaxgan.base.registry import Registry, import_all


class Architecture(NamedTuple):
  build: Callable[..., Tuple[nnx.Module, nnx.Module]]
  fields: Dict[str, object]   # name -> jaxgan.base.schema.Field, read as config.model.<arch>.name
  # (model_config, image_shape) -> None; raises for a combination `build` would refuse,
  # so the config is refused before any data is read (jaxgan/run/validate.py)
  check: Optional[Callable] = None


ARCHITECTURES: Registry[Architecture] = Registry("architecture", "config.model.arch")


def build(model_cfg, image_shape, num_classes: int, seed: int, linear_output: bool = False):
  """Builds (G, D) for `model_cfg`; num_classes is used by conditional models only.
  `linear_output`: a G that ends in tanh (images in [-1, 1]) ends without it (latents)."""
  check_conditioning(model_cfg.conditioning, num_classes if model_cfg.conditioning != "none"
                     else 2)
  arch = ARCHITECTURES.get(model_cfg.arch)
  g, d = arch.build(model_cfg, tuple(image_shape), num_classes, nnx.Rngs(params=seed))
  if linear_output and hasattr(g, "linear_output"):
    g.linear_output = True
  return g, d


def param_counts(model_cfg, image_shape, num_classes: int) -> Tuple[int, int]:
  """(G, D) parameter counts of `model_cfg`, without allocating them (jax.eval_shape): a
  paper-size network can be checked on any machine."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def shapes():
    g, d = build(model_cfg, image_shape, num_classes, 0)
    return nnx.state(g, nnx.Param), nnx.state(d, nnx.Param)
  g, d = jax.eval_shape(shapes)
  n = lambda t: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(t))
  return n(g), n(d)


def freeze_mask(d: nnx.Module, params, k: int, arch: str):
  """Freeze-D (Mo et al. 2020, "Freeze the Discriminator: a Simple Baseline for
  Fine-Tuning GANs"): a tree like D's `params`, True where a parameter belongs to one of
  D's first k units from the input (its class's `freeze_units()`: the highest-resolution
  blocks, with the input layer) and stays as it is while the rest of D is fine-tuned."""
  import jax  # pylint: disable=g-import-not-at-top
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  units = d.freeze_units() if hasattr(d, "freeze_units") else None
  if units is None:
    raise UserError(f"config.model.freeze_d={k}: the {arch!r} discriminator has no blocks "
                    "to freeze; set it to 0.")
  if k >= len(units):
    raise UserError(f"config.model.freeze_d={k}: the {arch!r} discriminator has "
                    f"{len(units)} blocks, and freezing all would leave only its output "
                    f"layer to train; use 1 to {len(units) - 1}.")
  prefixes = tuple(p + "/" for unit in units[:k] for p in unit)

  def frozen(path, _):
    return (keypaths.name(path) + "/").startswith(prefixes)
  return jax.tree_util.tree_map_with_path(frozen, params)


import_all(__name__, __path__)
