"""The whole config checked before any data is read or anything compiled.

`validate(config)` checks every field against the schema (jaxgan/config.py: type, range,
registry names, no unknown field) and then the rules that tie fields together, each a
small function in `CROSS_CHECKS`. Every problem is a `UserError` naming the field, its
value and the fix, which launch.py prints as one line.
"""
from __future__ import annotations

from typing import Callable, List

import ml_collections

from jaxgan import config as C
from jaxgan.base import sizes
from jaxgan.base.errors import UserError


def _label_tricks(c):
  from jaxgan.core.losses import LOSSES  # pylint: disable=g-import-not-at-top
  lab = c.labels
  if not LOSSES.get(c.loss).uses_targets and (lab.smoothing or lab.noise or lab.flip):
    valid = [n for n in LOSSES.names() if LOSSES.get(n).uses_targets]
    raise UserError(f"config.labels (smoothing/noise/flip) has no meaning for "
                    f"config.loss={c.loss!r}; set them to 0 or use a loss with targets: "
                    f"{', '.join(valid)}.")


def _regularizers(c):
  from jaxgan.core import regularizers  # pylint: disable=g-import-not-at-top
  try:
    entries = regularizers.resolve(c)
  except UserError:
    raise
  except (ValueError, TypeError) as e:
    raise UserError(str(e)) from None
  for e in entries:
    if e.reg.per_example and c.model.d_norm == "batch" and c.model.arch != "mlp":
      raise UserError(
          f"Regularizer {e.name!r} needs per-example input gradients, but "
          "config.model.d_norm='batch' couples the examples of a batch. Set "
          "config.model.d_norm='layer' or 'none' (Gulrajani et al. 2017, sec. 4).")


def _evaluation(c):
  from jaxgan.eval import metrics  # pylint: disable=g-import-not-at-top
  if not c.eval.every:
    return
  names = metrics.parse(c.eval.metrics)
  if not names:
    raise UserError("config.eval.metrics is empty but config.eval.every > 0; name the "
                    "metrics (e.g. fd,kid,classes) or set config.eval.every=0.")
  inception = [n for n in names if metrics.METRICS.get(n).needs == "inception"]
  if inception and not c.eval.inception_weights:
    raise UserError(f"config.eval.metrics={c.eval.metrics!r} names {', '.join(inception)}, "
                    "which need the FID Inception's weights: pass "
                    "--config.eval.inception_weights=PATH (pytorch-fid's "
                    "pt_inception-2015-12-05-6726825d.pth) or drop them.")
  keys = [k for n in names for k in metrics.METRICS.get(n).minimize]
  if c.eval.best_metric not in keys:
    raise UserError(f"config.eval.best_metric={c.eval.best_metric!r} is not computed by "
                    f"config.eval.metrics={c.eval.metrics!r}; valid (lower is better): "
                    f"{', '.join(keys)}.")


def _data(c):
  d = c.data
  if d.max_examples and d.max_examples < d.batch_size:
    raise UserError(f"config.data.max_examples={d.max_examples} is smaller than "
                    f"config.data.batch_size={d.batch_size}; raise it or lower the batch.")
  if d.source == "stream" and (d.subset or not (d.name or d.folder)):
    what = (f"config.data.subset={d.subset} keeps a subset in memory" if d.subset else
            "the embedded Fashion-MNIST (no data.name or data.folder) is held in memory")
    raise UserError(f"config.data.source='stream' cannot stream: {what}; set "
                    "config.data.source='auto' or 'memory', or name a prepared directory "
                    "(config.data.folder) or an array_record TFDS dataset (config.data.name).")
  if d.on_device and d.source == "stream":
    raise UserError("config.data.on_device=True needs the dataset in memory, but "
                    "config.data.source='stream' reads it from disk; set "
                    "config.data.on_device=False, or config.data.source='memory'.")
  if d.name and d.folder:
    raise UserError(f"config.data.name={d.name!r} and config.data.folder={d.folder!r} both "
                    "set; pick one (clear the other with '').")


def _architecture(c):
  from jaxgan.core import models  # pylint: disable=g-import-not-at-top
  from jaxgan import data as data_lib  # pylint: disable=g-import-not-at-top
  arch = models.ARCHITECTURES.get(c.model.arch)
  latent = data_lib.latent_manifest(c.data)   # a latent dataset: G makes its latents
  shape = (tuple(latent["latent_shape"]) if latent is not None
           else (*sizes.hw(c.data.image_size), c.data.channels))
  if arch.check is not None:
    try:
      arch.check(c.model, shape)
    except UserError:
      raise
    except ValueError as e:
      raise UserError(str(e)) from None


def _schedules(c):
  from jaxgan.core import schedules  # pylint: disable=g-import-not-at-top
  schedules.resolve(c)


def _steps_per_call(c):
  from jaxgan.core import multistep  # pylint: disable=g-import-not-at-top
  multistep.check(c)
  n, b = c.train.grad_accum, c.data.batch_size
  if b % n:
    ok = [k for k in range(1, min(b, 16) + 1) if b % k == 0]
    raise UserError(f"config.train.grad_accum={n} does not divide config.data.batch_size={b} "
                    f"into equal micro-batches; use one of {', '.join(map(str, ok))}.")


def _latent(c):
  """What has no meaning on latents: ADA's colour group (luma and hue of RGB pixels; GAT
  applies DiffAugment's channel-agnostic color to latents, which stays allowed), metrics of
  G's pixels (PPL), the uint8 on-device dataset."""
  from jaxgan import data as data_lib  # pylint: disable=g-import-not-at-top
  if data_lib.latent_manifest(c.data) is None:
    return
  ops = [p.strip() for p in c.augment.policy.split(",") if p.strip()]
  if "ada" in ops and "c" in c.augment.ada_ops:
    raise UserError(f"config.augment.ada_ops={c.augment.ada_ops!r}: ADA's colour group acts "
                    f"on RGB pixels, and config.data.folder={c.data.folder!r} holds latents; "
                    "drop 'c' (augment.ada_ops='bg').")
  ppl = [m for m in c.eval.metrics.split(",") if m.strip().startswith("ppl")]
  if ppl:
    raise UserError(f"config.eval.metrics has {ppl[0]!r}, a distance between G's images "
                    "along small steps in its latent space, which a latent run does not "
                    "compute; drop it.")
  if c.data.on_device:
    raise UserError("config.data.on_device=True holds uint8 images on the device; a latent "
                    "dataset holds float32 means and stds: set config.data.on_device=False.")


def _multilevel(c):
  """GAT's multi-level noise (model.gat.mng): D sees G's levels on channels (levels x the
  image's), so nothing may mix real and generated inputs or need RGB channels."""
  if c.model.arch != "gat" or not c.model.gat.mng or c.model.gat.levels < 2:
    return
  names = [r if isinstance(r, str) else r.get("name") for r in c.regularizers]
  if "gp" in names or c.penalty == "gp":
    raise UserError("config.regularizers: 'gp' interpolates real and generated images, but "
                    "with config.model.gat.mng=True G's training output holds its "
                    f"{c.model.gat.levels} levels on channels; use r1/r2 or set "
                    "config.model.gat.mng=False.")
  ops = [p.strip() for p in c.augment.policy.split(",") if p.strip()]
  if "ada" in ops and "c" in c.augment.ada_ops:
    raise UserError(f"config.augment.ada_ops={c.augment.ada_ops!r}: ADA's colour group needs "
                    "RGB images, and with config.model.gat.mng=True D's inputs hold G's "
                    "levels on channels; drop 'c' (augment.ada_ops='bg').")


def _repa(c):
  """GAT's REPA term: a D with a projector as wide as the encoder, and an augmentation
  whose geometry can be replayed on the encoder's view."""
  from jaxgan.core import augment, regularizers  # pylint: disable=g-import-not-at-top
  from jaxgan.core.regularizers import repa  # pylint: disable=g-import-not-at-top
  entries = [e for e in regularizers.resolve(c) if e.name == "repa"]
  if not entries:
    return
  dim = int(c.model.gat.repa_dim) if c.model.arch == "gat" else 0
  if not dim:
    raise UserError("config.regularizers: 'repa' aligns D's projected tokens to an encoder, "
                    f"but config.model.arch={c.model.arch!r} has no projector; use arch 'gat' "
                    "with config.model.gat.repa_dim = the encoder's width (768 for ViT-B).")
  if augment.uses_p(c.augment.policy):
    raise UserError(f"config.augment.policy={c.augment.policy!r}: 'repa' replays D's "
                    "translations and flips on the encoder's view, which an adaptive "
                    "augmentation's cannot be; use DiffAugment's (GAT's "
                    "'gat_color,translation,cutout,gat_flip').")
  options = entries[0].options
  if not isinstance(options["resolution"], int) or options["resolution"] < 1:
    raise UserError(f"config.regularizers: repa's 'resolution'={options['resolution']!r} must "
                    "be a positive whole number of pixels (224 for DINOv2 as GAT uses it).")
  path = str(options["encoder"] or "")
  if path and not repa.available(options) and not options["optional"]:
    raise UserError(f"config.regularizers: repa's 'encoder'={path!r} is not a file; give "
                    "the path of DINOv2 weights (torch hub's dinov2_vitb14_pretrain.pth or "
                    "a safetensors file), or add 'optional': True to train without REPA "
                    "when it is missing.")
  if repa.available(options):
    enc = repa.encoder_of(options)
    if enc.width != dim:
      raise UserError(f"config.model.gat.repa_dim={dim}, but the REPA encoder "
                      f"{options['encoder']!r} is {enc.width} wide; set "
                      f"--config.model.gat.repa_dim={enc.width}.")


CROSS_CHECKS: List[Callable] = [_label_tricks, _regularizers, _schedules, _evaluation, _data,
                                _architecture, _steps_per_call, _latent, _multilevel, _repa]


def validate(config) -> None:
  """Raises UserError for the first problem of `config`; returns None when it is valid."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"--config: get_config() returned a {type(config).__name__}, not an "
                    "ml_collections.ConfigDict; start from configs/default.py's get_config() "
                    "and override its fields, as configs/gan.py does.")
  C.check_fields(config)
  config.data.image_size = sizes.canonical(config.data.image_size)   # one spelling
  for check in CROSS_CHECKS:
    check(config)
