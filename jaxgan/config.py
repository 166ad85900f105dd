"""The config schema: every field jaxgan reads, with its default, meaning and policy.

`FIELDS` is the one place that says what a field is. From it come the default config
(`default_config`), which fields may change when a run is resumed (`resume=True`: they do
not change what is computed), which may differ between the members of a population
(`population=True`: scalars the step reads from the state, not from the compiled program),
and the documentation (`describe`). Each architecture declares its own block
(`config.model.<arch>.*`) next to its modules (jaxgan/core/models); it is merged in here.

A run's stored config is read back on top of today's defaults (`config_from_dict`), after
`MIGRATIONS` renamed the fields that moved, so runs written by older versions still load.
"""
from __future__ import annotations

import importlib
import json
from typing import Any, Dict, List, Optional

import ml_collections
from flax import traverse_util

from jaxgan.base import sizes
from jaxgan.base.errors import UserError, did_you_mean
from jaxgan.base.schema import Field, OneOf, Range, get_field  # noqa: F401  (re-exported)
from jaxgan.core.precision import DTYPES


def _ada_ops(v) -> Optional[str]:
  if not isinstance(v, str) or not v or set(v) - set("bgc"):
    return "must be one or more of the letters b, g, c (e.g. 'bgc', 'bg')"
  return None


def _sha_rule(v) -> Optional[str]:
  if v in ("published", "any") or (v and all(ch in "0123456789abcdefABCDEF" for ch in v)):
    return None
  return "must be 'published', 'any' or a hex prefix of the file's sha256"


def _max_host_memory(v) -> Optional[str]:
  from jaxgan.data.choose import bytes_problem  # pylint: disable=g-import-not-at-top
  return bytes_problem(v)


def _names(registry_path: str, extra=()):
  """The names of a registry, read when validating (registries fill at import)."""
  def names():
    module, attr = registry_path.rsplit(".", 1)
    return [*extra, *getattr(importlib.import_module(module), attr).names()]
  return names


class _ImageSize:
  """data.image_size's rule: one side or height,width (jaxgan/base/sizes.py)."""

  def problem(self, v) -> Optional[str]:
    return sizes.problem(v)

  def text(self) -> str:
    return f"one side or height,width, each >= {sizes.LO} and <= {sizes.HI}"


GE0, GE1, POS = Range(0), Range(1), Range(0, lo_open=True)
UNIT = Range(0, 1, hi_open=True)          # [0, 1)
PROB = Range(0, 1)                        # [0, 1]


def _sigma_rels(v):
  """phema.sigma_rels: a tuple of distinct numbers in (0, sqrt(1/12))."""
  if not isinstance(v, (tuple, list)):
    return "must be a tuple of numbers, e.g. (0.05, 0.1)"
  for x in v:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < 12 ** -0.5:
      return (f"has {x!r}: each must be a number in (0, sqrt(1/12) = 0.28868), sqrt(1/12) "
              "being a uniform average; EDM2 and R3GAN2 keep (0.05, 0.1)")
  if len(set(v)) != len(v):
    return "repeats a value: give each width once"
  return None


def _widths(v):
  """autoencoder.block_out_channels: a tuple of positive integers, one per level."""
  if (not isinstance(v, (tuple, list)) or not v
      or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)):
    return "must be a non-empty tuple of positive integers, one width per level, e.g. (32, 64, 64)"
  return None


def _optim_fields(net: str) -> Dict[str, Field]:
  who = {"g": "generator", "d": "discriminator"}[net]
  p = f"optim.{net}."
  return {
      p + "name": Field("adam", f"{who} optimizer", rule=OneOf(_names("jaxgan.core.optim.OPTIMIZERS"))),
      p + "lr": Field(2e-4, f"{who} learning rate", population=True, rule=POS),
      p + "b1": Field(0.5, "Adam beta1", population=True, rule=UNIT),
      p + "b2": Field(0.999, "Adam beta2", population=True, rule=UNIT),
      p + "eps": Field(1e-8, "Adam / RMSProp epsilon", population=True, rule=POS),
      p + "decay": Field(0.99, "RMSProp decay", population=True, rule=UNIT),
      p + "momentum": Field(0.0, "SGD momentum", rule=UNIT),
      p + "weight_decay": Field(0.0, "AdamW's decoupled weight decay (name='adamw')",
                                population=True, rule=GE0),
      p + "grad_clip": Field(0.0, "> 0: clip the gradient's global norm to this before the "
                             "update (GAT: 1.0; 0 = off)", rule=GE0),
      p + "clip": Field(0.0, "> 0: project the weights into [-clip, clip] after every update "
                        "(the original WGAN's weight clipping; 0 = off)", rule=GE0),
  }


FIELDS: Dict[str, Field] = {
    "init_from": Field("", "fine-tuning: start from another run's weights, WORKDIR or "
                       "WORKDIR:STEP (latest by default); optimizer states, step and "
                       "schedules start fresh (jaxgan/run/init_from.py)"),
    "init_from_parts": Field("g_d", "what init_from takes: g_d (G, its EMA and D) or g "
                             "(G and its EMA; D as initialised)", rule=OneOf(("g_d", "g"))),
    "seed": Field(0, "root seed of the run: initialisation, data order, every draw",
                  population=True, rule=GE0),
    "num_devices": Field(0, "devices to use (0: every device of every process)", resume=True,
                         rule=GE0),
    # Data
    "data.name": Field("", "TFDS name (mnist, fashion_mnist, cifar10, celeb_a, ...); '' with "
                       "no folder: the embedded Fashion-MNIST (offline)"),
    "data.split": Field("train", "TFDS split to train on"),
    "data.data_dir": Field("", "TFDS data_dir ('' = TFDS default / $TFDS_DATA_DIR)",
                           resume=True),
    "data.download": Field(False, "let TFDS download and prepare the dataset", resume=True),
    "data.folder": Field("", "a folder of PNG/JPEG images instead (sub-folders = classes), "
                         "or a directory written by `python -m jaxgan.data.prepare` (it holds "
                         "a manifest.json)"),
    "data.source": Field("auto", "memory (decode everything into host memory), stream (read "
                         "each batch from disk: prepared directories, array_record TFDS) or "
                         "auto (stream when the decoded images exceed data.max_host_memory)",
                         rule=OneOf(("auto", "memory", "stream"))),
    "data.max_host_memory": Field("8GB", "data.source=auto streams a dataset whose decoded "
                                  "images (count x S x S x C bytes per process) exceed this: "
                                  "'8GB', '512MB', '2GiB' or a byte count",
                                  rule=_max_host_memory),
    "data.on_device": Field(False, "hold the decoded dataset on the device (count x S x S "
                            "x C bytes per device) and gather each batch there from the "
                            "same seeded order: only int32 indices travel per call; "
                            "bit-identical to False; one process, data in memory",
                            resume=True),
    "data.image_key": Field("image", "TFDS feature holding the image"),
    "data.label_key": Field("label", "TFDS feature holding the label ('' for none; "
                            "'attributes/Blond_Hair' style for celeb_a)"),
    "data.image_size": Field(28, "images are resized to this size: one side (28: 28x28) "
                             "or height,width (32,64; --config.data.image_size=32,64) for "
                             "the architectures that take non-square images (dcgan, resnet, "
                             "biggan, stylegan2, r3gan, mlp)", rule=_ImageSize(),
                             literal=True),
    "data.channels": Field(1, "1 (grayscale) or 3 (RGB)", rule=OneOf((1, 3))),
    "data.batch_size": Field(64, "global batch, split over all devices", rule=GE1),
    "data.max_examples": Field(0, "0 = all; a small number for quick tests", rule=GE0),
    "data.subset": Field(0.0, "train on a fixed subset: a count (>= 1) or a fraction (< 1) "
                         "of the split; 0 = all (data-efficient GAN studies)", rule=GE0),
    "data.subset_seed": Field(0, "which images data.subset keeps (its own seed: every run "
                              "with the same subset sees the same images)", rule=GE0),
    "data.latent_norm": Field("channel", "a latent dataset (prepare --encoder): G and D see "
                              "(z - shift) / scale with the dataset's per-channel statistics "
                              "(channel), the autoencoder's shift/scaling factors "
                              "(autoencoder) or z itself (none) (jaxgan/core/latent_space.py)",
                              rule=OneOf(("channel", "autoencoder", "none"))),
    # Model (the architecture's own fields are in config.model.<arch>, see jaxgan/core/models)
    "model.arch": Field("mlp", "architecture (jaxgan/core/models)",
                        rule=OneOf(_names("jaxgan.core.models.ARCHITECTURES"))),
    "model.latent_dim": Field(64, "size of z", rule=GE1),
    "model.conditioning": Field("none", "class conditioning",
                                rule=OneOf(("none", "concat", "projection", "acgan"))),
    "model.embed_dim": Field(32, "class embedding size of a projection-conditioned G",
                             rule=GE1),
    "model.acgan_weight": Field(1.0, "weight of the auxiliary classification losses (acgan)",
                                rule=GE0),
    "model.init": Field("pytorch", "weight initialisation",
                        rule=OneOf(("pytorch", "lecun", "glorot", "dcgan", "ortho"))),
    "model.g_act": Field("relu", "generator activation",
                         rule=OneOf(_names("jaxgan.core.models.layers.ACTIVATIONS"))),
    "model.d_act": Field("leaky_relu", "discriminator activation",
                         rule=OneOf(_names("jaxgan.core.models.layers.ACTIVATIONS"))),
    "model.g_norm": Field("none", "generator normalisation", rule=OneOf(("batch", "layer", "none"))),
    "model.d_norm": Field("none", "discriminator normalisation",
                          rule=OneOf(("batch", "layer", "none"))),
    "model.d_dropout": Field(0.0, "dropout rate in D", rule=UNIT),
    "model.d_spectral_norm": Field(False, "spectral normalisation of D's layers"),
    "model.freeze_d": Field(0, "Freeze-D (Mo et al. 2020), for fine-tuning: D's first k "
                            "blocks from the input keep their weights", rule=GE0),
    "model.decoder": Field("", "a latent run: the autoencoder directory (diffusers format) "
                           "that decodes G's latents for grids, samples and metrics; '' = "
                           "the encoder the latent dataset's manifest names (its weights "
                           "must be the same file; it may move between invocations)",
                           resume=True),
    # Objective
    "loss": Field("non_saturating", "adversarial loss (jaxgan/core/losses.py)",
                  rule=OneOf(_names("jaxgan.core.losses.LOSSES"))),
    "regularizers": Field((), "regularizers (jaxgan/core/regularizers): a list of {name, weight, "
                          "every, side}; every = lazy regularization (applied every k "
                          "updates with weight x k); side = d or g"),
    "penalty": Field("none", "shorthand for one D-side regularizer ('clip' = optim.d.clip = "
                     "clip_value)", rule=OneOf(_names("jaxgan.core.regularizers.REGULARIZERS",
                                                      ("none", "clip")))),
    "penalty_weight": Field(10.0, "weight of `penalty`: lambda (gp, dragan) or gamma (r1, r2)",
                            population=True, rule=GE0),
    "clip_value": Field(0.01, "penalty='clip': critic weights in [-c, c]", rule=POS),
    "d_loss_average": Field(False, "D loss = (real term + fake term) / 2 instead of the sum"),
    "labels.smoothing": Field(0.0, "one-sided: real target 1 - smoothing", population=True,
                              rule=UNIT),
    "labels.noise": Field(0.0, "real 1 + noise*U(0,1), fake -noise*U(0,1)", population=True,
                          rule=Range(0, 1)),
    "labels.flip": Field(0.0, "probability of swapping an example's targets",
                         population=True, rule=PROB),
    "augment.policy": Field("", "augmentations of every D input (jaxgan/core/augment), "
                            "comma-separated, applied in order; '' = none",
                            rule=OneOf(_names("jaxgan.core.augment.AUGMENTATIONS"), several=True)),
    "augment.p": Field(0.0, "ADA: initial probability p of each transformation (the "
                       "fixed p when augment.ada_target=0)", population=True, rule=PROB),
    "augment.ada_target": Field(0.6, "ADA: target of r_t = E[sign(D(real))]; p rises while "
                                "r_t is above it (0: p fixed at augment.p)", rule=PROB),
    "augment.ada_interval": Field(4, "ADA: steps between adjustments of p", rule=GE1),
    "augment.ada_kimg": Field(500.0, "ADA: thousands of images for p to move from 0 to 1",
                              rule=POS),
    "augment.ada_ops": Field("bgc", "ADA: transformation groups, b (flips, 90-degree "
                             "rotations, integer translation), g (scaling, rotation, "
                             "fractional translation), c (colour)", rule=_ada_ops),
    "ema_decay": Field(0.0, "> 0: sample and evaluate with an EMA of G's weights",
                       population=True, rule=UNIT),
    "ema_start": Field(0, "the EMA generator copies G's weights until this step (BigGAN in "
                       "StudioGAN: 1000)", rule=GE0),
    "ema_halflife_kimg": Field(0.0, "> 0: the EMA generator's half-life in thousands of "
                               "images instead of ema_decay (decay = 0.5^(batch / (1000 h)) "
                               "per step; StyleGAN2 uses 10)", rule=GE0),
    "ema_rampup": Field(0.0, "> 0: the half-life is at most ema_rampup x the images seen "
                        "so far (StyleGAN2-ADA's ramp-up: 0.05 for cifar)", rule=GE0),
    "phema.sigma_rels": Field((), "post-hoc EMA (EDM2, jaxgan/core/phema.py): relative widths "
                              "of the power-function EMA profiles of G's weights kept in the "
                              "train state and saved as snapshots, e.g. (0.05, 0.1); () off",
                              rule=_sigma_rels),
    "phema.snapshot_images": Field(0, "post-hoc EMA: save the profiles every this many images "
                                   "(G's batch x steps; labelled with the exact count); 0: at "
                                   "every checkpoint_every", resume=True, rule=GE0),
    "task": Field("gan", "what --mode train trains: gan, or autoencoder (a KL autoencoder "
                  "of diffusers' AutoencoderKL family for latent GANs, "
                  "jaxgan/run/autoencoder.py; optimizer optim.g)",
                  rule=OneOf(("gan", "autoencoder"))),
    "autoencoder.block_out_channels": Field((128, 256, 512, 512), "task=autoencoder: widths "
                                            "per level; the latents are 2^(levels-1) times "
                                            "smaller than the images (SD-VAE's default)",
                                            rule=_widths),
    "autoencoder.layers_per_block": Field(2, "ResNet blocks per encoder level (the decoder "
                                          "has one more)", rule=GE1),
    "autoencoder.latent_channels": Field(4, "channels of the latents", rule=GE1),
    "autoencoder.norm_num_groups": Field(32, "GroupNorm groups (must divide every width)",
                                         rule=GE1),
    "autoencoder.mid_attention": Field(True, "self-attention in the middle blocks"),
    "autoencoder.l1_weight": Field(1.0, "weight of the L1 reconstruction error (summed over "
                                   "pixels, averaged over the batch, as LDM's)", rule=GE0),
    "autoencoder.l2_weight": Field(0.0, "weight of the squared reconstruction error (same "
                                   "normalisation)", rule=GE0),
    "autoencoder.kl_weight": Field(1e-6, "weight of KL(q(z|x) || N(0, I)) summed over the "
                                   "latent (LDM's 1e-6)", rule=GE0),
    "autoencoder.scale_images": Field(4096, "training images whose latent means set the "
                                      "exported shift_factor and scaling_factor (mean, "
                                      "1/std), as SD's 0.18215 was found", rule=GE1),
    "schedules": Field((), "hyperparameters that change over training (jaxgan/core/schedules.py):"
                       " a list of {target, kind (linear|cosine), end, steps}; targets "
                       "optim.{g,d}.lr, optim.{g,d}.b2, ema_halflife_kimg, augment.p, "
                       "regularizers.NAME"),
    **_optim_fields("g"),
    **_optim_fields("d"),
    # Training
    "train.steps": Field(10_000, "generator updates", resume=True, rule=GE1),
    "train.max_seconds": Field(0.0, "> 0: also stop (saving and evaluating as at the end) "
                               "after this many seconds of training in this invocation, "
                               "evaluations excluded; for time-to-quality comparisons",
                               resume=True, rule=GE0),
    "train.n_critic": Field(1, "discriminator updates per generator update", rule=GE1),
    "train.critic_loop": Field("unroll", "critic updates unrolled or in a lax.scan",
                               rule=OneOf(("unroll", "scan"))),
    "train.grad_accum": Field(1, "gradient accumulation: each update's batch is split into N "
                              "micro-batches (a lax.scan) whose gradients are averaged "
                              "before the one update, so only a micro-batch's activations "
                              "are live; equal to the full batch to float32 rounding where "
                              "nothing is drawn or normalised per batch (train_step.py)",
                              resume=True, rule=GE1),
    "train.remat": Field(False, "rematerialise G and D (jax.checkpoint): their activations "
                         "are recomputed in the backward pass instead of kept, for about "
                         "one more forward of each", resume=True),
    "train.steps_per_call": Field(1, "train steps per compiled call (jaxgan/core/multistep.py): "
                                  "K > 1 transfers K steps' batches at once and runs them "
                                  "in one program; the same training as 1 to float32 rounding; logging, "
                                  "grid, eval and checkpoint intervals must be multiples of it",
                                  resume=True, rule=GE1),
    "train.call_loop": Field("auto", "steps_per_call > 1: scan (lax.scan, compiled once), "
                             "unroll (the K steps written out) or auto (scan); either "
                             "equals one step per call to float32 rounding",
                             resume=True,
                             rule=OneOf(("auto", "scan", "unroll"))),
    "train.dtype": Field("float32", "compute dtype of G and D: float32, bfloat16 (mixed "
                         "precision: float32 parameters, optimizer states, losses and "
                         "penalty norms; jaxgan/core/precision.py) or float16",
                         rule=OneOf(tuple(DTYPES))),
    "train.population_mode": Field("vmap", "--population: vmap (one batched step) | unroll "
                                   "(members one after another in one program)",
                                   rule=OneOf(("vmap", "unroll"))),
    "train.cpu_conv": Field("auto", "CPU float32 convolutions: auto (oneDNN when it builds, "
                            "else XLA) | onednn | xla", resume=True,
                            rule=OneOf(("auto", "onednn", "xla"))),
    "train.compile_cache": Field("auto", "JAX's persistent compilation cache "
                                 "(jaxgan/run/compile_cache.py): auto (<JAXGAN_CACHE_DIR or "
                                 "~/.cache/jaxgan>/xla), a directory, or off "
                                 "(JAXGAN_COMPILE_CACHE=off also turns it off)", resume=True),
    "train.log_every": Field(100, "steps between log rows", resume=True, rule=GE1),
    "train.sample_every": Field(1000, "steps between sample grids (0: off)", resume=True,
                                rule=GE0),
    "train.checkpoint_every": Field(1000, "steps between checkpoints", resume=True, rule=GE1),
    "train.progress": Field(True, "progress bar", resume=True),
    "train.tensorboard": Field(True, "also write TensorBoard event files (DIR/tensorboard)",
                               resume=True),
    "checkpoint.keep": Field(3, "checkpoints kept (plus the best one)", resume=True, rule=GE1),
    "checkpoint.async_save": Field(True, "write checkpoints in the background", resume=True),
    # Evaluation
    "eval.every": Field(0, "> 0: evaluate eval.metrics every N steps (0: off)", resume=True,
                        rule=GE0),
    "eval.metrics": Field("fd,kid,classes", "metrics during training (jaxgan/eval/metrics), "
                          "comma-separated", resume=True,
                          rule=OneOf(_names("jaxgan.eval.metrics.METRICS"), several=True)),
    "eval.num_samples": Field(2000, "generated images per evaluation during training",
                              resume=True, rule=GE1),
    "eval.image_size": Field(0, "> 0: the in-domain metrics compare at this size (reference "
                             "loaded at it, samples resized to it), so runs trained at "
                             "different sizes share one classifier; 0: the training size",
                             resume=True, rule=GE0),
    "eval.best_metric": Field("fd", "the checkpoint with the lowest value is kept apart"),
    "eval.cache_dir": Field("~/.cache/jaxgan", "trained classifiers and real statistics",
                            resume=True),
    "eval.classifier_steps": Field(2000, "training steps of the in-domain classifier",
                                   rule=GE1),
    "eval.test_split": Field("test", "TFDS split for the classifier's accuracy and "
                             "memorisation"),
    "eval.max_real_features": Field(10000, "real features kept for KID / precision-recall",
                                    rule=GE1),
    "eval.memorization_samples": Field(16, "samples in the memorisation check", resume=True,
                                       rule=GE1),
    "eval.inception_weights": Field(
        "", "local pytorch-fid pt_inception-2015-12-05-6726825d.pth or JAX-port "
        "inception_v3_weights_fid.pickle, for fid_inception, is, kid_inception, pr_inception",
        resume=True),
    "eval.inception_sha256": Field(
        "published", "'published' (a .pth must hash to 6726825d...), 'any' (other weights "
        "on purpose) or a hex prefix of the file's sha256", resume=True, rule=_sha_rule),
    "eval.inception_resize": Field("bilinear", "resize to 299x299: pytorch-fid's bilinear "
                                   "or clean-fid's PIL bicubic", resume=True,
                                   rule=OneOf(("bilinear", "bicubic"))),
    "eval.inception_reference": Field(
        "train", "real images of the Inception metrics: the whole training split (also "
        "under data.subset) or the held-out split", resume=True, rule=OneOf(("train", "test"))),
    "eval.inception_ref_stats": Field("", "pytorch-fid .npz (mu, sigma): the reference of "
                                      "fid_inception instead", resume=True),
    "eval.inception_samples": Field(50000, "generated images of --mode eval with Inception "
                                    "metrics when --num_samples is not given", resume=True,
                                    rule=GE1),
    "eval.inception_batch_size": Field(100, "images per Inception batch (over the local "
                                       "devices)", resume=True, rule=GE1),
    "sample.grid_size": Field(64, "images in each sample grid", resume=True, rule=GE1),
    "sample.grid_cols": Field(8, "columns of a sample grid (0: square)", resume=True, rule=GE0),
}

# Fields that moved: stored configs of older runs are read through this table.
MIGRATIONS = {f"model.{k}": f"model.mlp.{k}" for k in ("g_widths", "d_widths")}
MIGRATIONS.update({f"model.{k}": f"model.dcgan.{k}" for k in (
    "g_base_features", "d_base_features", "start_size", "g_stem", "d_head", "upsample")})


def all_fields() -> Dict[str, Field]:
  """FIELDS plus every registered architecture's block (model.<arch>.<field>)."""
  from jaxgan.core import models  # pylint: disable=g-import-not-at-top
  out = dict(FIELDS)
  for arch in models.ARCHITECTURES.names():
    for k, f in models.ARCHITECTURES.get(arch).fields.items():
      out[f"model.{arch}.{k}"] = f
  return out


def _value(f: Field):
  return ml_collections.FieldReference(f.default, field_type=object) if f.literal else f.default


def default_config() -> ml_collections.ConfigDict:
  nested = traverse_util.unflatten_dict({tuple(k.split(".")): _value(f)
                                         for k, f in all_fields().items()})
  return ml_collections.ConfigDict(nested)


def resolved_copy(config) -> ml_collections.ConfigDict:
  """An independent copy (references resolved) whose literal fields still take any literal:
  resolving would type them as their current value."""
  c = config.copy_and_resolve_references()
  for k, f in all_fields().items():
    if f.literal:
      *path, last = k.split(".")
      node = get_field(c, ".".join(path)) if path else c
      node[last] = ml_collections.FieldReference(node[last], field_type=object)
  return c


def _matches(key: str, names) -> bool:
  return any(key == n or key.startswith(n + ".") for n in names)


def resume_fields() -> List[str]:
  return sorted(k for k, f in all_fields().items() if f.resume)


def population_fields() -> List[str]:
  return sorted(k for k, f in all_fields().items() if f.population)


def flatten(d: dict) -> Dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}; tuples become lists (as in JSON)."""
  flat = traverse_util.flatten_dict(d, sep=".")
  return {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


def migrate(stored: dict) -> dict:
  """A config (as a dict) in today's layout: moved fields renamed, and the 'clip' penalty
  shorthand written as what it means, D's weight projection (optim.d.clip)."""
  flat = {MIGRATIONS.get(k, k): v for k, v in flatten(stored).items()}
  if flat.get("penalty") == "clip":
    flat["penalty"], flat["optim.d.clip"] = "none", flat.pop("clip_value", 0.01)
  return traverse_util.unflatten_dict({tuple(k.split(".")): v for k, v in flat.items()})


def config_from_dict(stored: dict) -> ml_collections.ConfigDict:
  """A stored (JSON) config on top of today's defaults: moved fields are migrated, fields
  added since it was written take their defaults, fields that no longer exist are dropped."""
  config = default_config()
  known = flatten(config_to_dict(config))
  updates = {}
  for k, v in flatten(migrate(stored)).items():
    if k in known:
      if isinstance(v, list):
        v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
      updates[k] = v
  config.update_from_flattened_dict(updates)
  return config


def incompatible_fields(stored: dict, current: dict) -> List[str]:
  """Fields whose change would make a resumed run a different run (both read on top of
  today's defaults, so fields added since the stored one was written compare equal)."""
  a = flatten(config_to_dict(config_from_dict(stored)))
  b = flatten(config_to_dict(config_from_dict(current)))
  safe = resume_fields()
  return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not _matches(k, safe))


def _type_problem(default, v) -> Optional[str]:
  """Whether `v` has the type of the field's default (ints for ints, ...)."""
  if isinstance(default, bool):
    return None if isinstance(v, bool) else "must be True or False"
  if isinstance(default, int):
    return None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer"
  if isinstance(default, float):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    return None if ok else "must be a number"
  if isinstance(default, str):
    return None if isinstance(v, str) else "must be a string"
  if isinstance(default, tuple):
    return None if isinstance(v, (tuple, list)) else "must be a tuple"
  return None


def field_problem(key: str, f: Field, v) -> Optional[str]:
  """What is wrong with value `v` of field `key`, or None."""
  problem = None if f.literal else _type_problem(f.default, v)
  if problem is None and f.rule is not None:
    problem = f.rule(v) if callable(f.rule) else f.rule.problem(v)
  return problem


def _from_text(default, raw: str):
  """A flag's text as the type of the field's default (raises ValueError)."""
  if isinstance(default, bool):
    table = {"true": True, "1": True, "false": False, "0": False}
    if raw.lower() not in table:
      raise ValueError("must be true or false")
    return table[raw.lower()]
  if isinstance(default, int):
    return int(raw)
  if isinstance(default, float):
    return float(raw)
  return raw


def apply_eval_overrides(config, overrides) -> None:
  """("eval.FIELD", "text") pairs of launch.py's --config.eval.* flags in the reading modes,
  checked like any config value and set on the run's stored config."""
  fields = all_fields()
  for key, raw in overrides:
    if not key.startswith("eval.") or key not in fields:
      valid = ", ".join(k for k in fields if k.startswith("eval."))
      raise UserError(f"--config.{key}: reading a run takes only config.eval.* fields from "
                      f"the command line.{did_you_mean(key, list(fields))} Valid: {valid}.")
    try:
      value = _from_text(fields[key].default, raw)
      problem = field_problem(key, fields[key], value)
    except ValueError as e:
      problem = str(e) if "must" in str(e) else f"must be a {type(fields[key].default).__name__}"
    if problem:
      raise UserError(f"--config.{key}={raw}: {problem}. Set --config.{key} to a valid value.")
    config.update_from_flattened_dict({key: value})


def check_fields(config) -> None:
  """Type and range of every field, and no field outside the schema (UserError)."""
  fields = all_fields()
  for k, v in flatten(config_to_dict(config)).items():
    if k not in fields:
      raise UserError(f"config.{k} is not a config field.{did_you_mean(k, fields)} "
                      "configs/default.py lists every field.")
    problem = field_problem(k, fields[k], v)
    if problem:
      raise UserError(f"config.{k}={v!r}: {problem} ({fields[k].doc}). Set "
                      f"--config.{k} to a valid value.")


def rule_text(f: Field) -> str:
  if f.rule is None or callable(f.rule) and not hasattr(f.rule, "text"):
    return ""
  return f.rule.text()


def describe() -> str:
  """The schema as a Markdown table (field, default, valid values, meaning)."""
  rows = ["| field | default | valid | meaning |", "|---|---|---|---|"]
  for k, f in all_fields().items():
    flags = [w for w, on in (("may change on resume", f.resume),
                             ("may vary in a population", f.population)) if on]
    extra = f" ({'; '.join(flags)})" if flags else ""
    valid = rule_text(f).replace("|", "\\|")
    rows.append(f"| `{k}` | `{f.default!r}` | {valid} | {f.doc}{extra} |")
  return "\n".join(rows)
