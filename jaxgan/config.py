"""The config schema: every field jaxgan reads, with its default, meaning and policy.

`FIELDS` is the one place that says what a field is. From it come the default config
(`default_config`), which fields may change when a run is resumed (`resume=True`: they do
not change what is computed), which may differ between the members of a population
(`population=True`: scalars the step reads from the state, not from the compiled program),
and the documentation (`describe`). Each architecture declares its own block
(`config.model.<arch>.*`) next to its modules (jaxgan/models); it is merged in here.

A run's stored config is read back on top of today's defaults (`config_from_dict`), after
`MIGRATIONS` renamed the fields that moved, so runs written by older versions still load.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List

import ml_collections
from flax import traverse_util


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: default value, one-line meaning and policies."""
  default: Any
  doc: str
  resume: bool = False      # may change when a run resumes
  population: bool = False  # may differ between members of a population


def _optim_fields(net: str) -> Dict[str, Field]:
  who = {"g": "generator", "d": "discriminator"}[net]
  p = f"optim.{net}."
  return {
      p + "name": Field("adam", f"{who} optimizer: adam | rmsprop | sgd"),
      p + "lr": Field(2e-4, f"{who} learning rate", population=True),
      p + "b1": Field(0.5, "Adam beta1", population=True),
      p + "b2": Field(0.999, "Adam beta2", population=True),
      p + "eps": Field(1e-8, "Adam / RMSProp epsilon", population=True),
      p + "decay": Field(0.99, "RMSProp decay", population=True),
      p + "momentum": Field(0.0, "SGD momentum"),
      p + "clip": Field(0.0, "> 0: project the weights into [-clip, clip] after every update "
                        "(the original WGAN's weight clipping; D only)"),
  }


FIELDS: Dict[str, Field] = {
    "seed": Field(0, "root seed of the run: initialisation, data order, every draw",
                  population=True),
    "num_devices": Field(0, "devices to use (0: every device of every process)", resume=True),
    # Data
    "data.name": Field("", "TFDS name (mnist, fashion_mnist, cifar10, celeb_a, ...); '' with "
                       "no folder: the embedded Fashion-MNIST (offline)"),
    "data.split": Field("train", "TFDS split to train on"),
    "data.data_dir": Field("", "TFDS data_dir ('' = TFDS default / $TFDS_DATA_DIR)",
                           resume=True),
    "data.download": Field(False, "let TFDS download and prepare the dataset", resume=True),
    "data.folder": Field("", "a folder of PNG/JPEG images instead (sub-folders = classes)"),
    "data.image_key": Field("image", "TFDS feature holding the image"),
    "data.label_key": Field("label", "TFDS feature holding the label ('' for none; "
                            "'attributes/Blond_Hair' style for celeb_a)"),
    "data.image_size": Field(28, "images are resized to image_size x image_size"),
    "data.channels": Field(1, "1 (grayscale) or 3 (RGB)"),
    "data.batch_size": Field(64, "global batch, split over all devices"),
    "data.max_examples": Field(0, "0 = all; a small number for quick tests"),
    # Model (the architecture's own fields are in config.model.<arch>, see jaxgan/models)
    "model.arch": Field("mlp", "architecture (jaxgan/models): mlp | dcgan"),
    "model.latent_dim": Field(64, "size of z"),
    "model.conditioning": Field("none", "none | concat | projection | acgan"),
    "model.embed_dim": Field(32, "class embedding size of a projection-conditioned G"),
    "model.acgan_weight": Field(1.0, "weight of the auxiliary classification losses (acgan)"),
    "model.init": Field("pytorch", "weight initialisation: pytorch | lecun | glorot | dcgan"),
    "model.g_act": Field("relu", "generator activation"),
    "model.d_act": Field("leaky_relu", "discriminator activation"),
    "model.g_norm": Field("none", "generator normalisation: batch | layer | none"),
    "model.d_norm": Field("none", "discriminator normalisation: batch | layer | none"),
    "model.d_dropout": Field(0.0, "dropout rate in D"),
    "model.d_spectral_norm": Field(False, "spectral normalisation of D's layers"),
    # Objective
    "loss": Field("non_saturating", "adversarial loss (jaxgan/losses.py): minimax | "
                  "non_saturating | lsgan | hinge | wgan | ragan"),
    "regularizers": Field((), "regularizers (jaxgan/regularizers): a list of {name, weight, "
                          "every, side, ...}; every = lazy regularization (applied every k "
                          "updates with weight x k); side = d or g"),
    "penalty": Field("none", "shorthand for one D-side regularizer: none | gp | r1 | r2 | "
                     "dragan | clip (= optim.d.clip = clip_value)"),
    "penalty_weight": Field(10.0, "weight of `penalty`: lambda (gp, dragan) or gamma (r1, r2)",
                            population=True),
    "clip_value": Field(0.01, "penalty='clip': critic weights in [-c, c]"),
    "d_loss_average": Field(False, "D loss = (real term + fake term) / 2 instead of the sum"),
    "labels.smoothing": Field(0.0, "one-sided: real target 1 - smoothing", population=True),
    "labels.noise": Field(0.0, "real 1 + noise*U(0,1), fake -noise*U(0,1)", population=True),
    "labels.flip": Field(0.0, "probability of swapping an example's targets",
                         population=True),
    "augment.policy": Field("", "augmentations of every D input (jaxgan/augment), "
                            "comma-separated, applied in order; '' = none"),
    "ema_decay": Field(0.0, "> 0: sample and evaluate with an EMA of G's weights",
                       population=True),
    **_optim_fields("g"),
    **_optim_fields("d"),
    # Training
    "train.steps": Field(10_000, "generator updates", resume=True),
    "train.n_critic": Field(1, "discriminator updates per generator update"),
    "train.critic_loop": Field("unroll", "unroll | scan"),
    "train.population_mode": Field("vmap", "--population: vmap (one batched step) | unroll "
                                   "(members one after another in one program)"),
    "train.cpu_conv": Field("auto", "CPU float32 convolutions: auto (oneDNN when it builds, "
                            "else XLA) | onednn | xla", resume=True),
    "train.log_every": Field(100, "steps between log rows", resume=True),
    "train.sample_every": Field(1000, "steps between sample grids (0: off)", resume=True),
    "train.checkpoint_every": Field(1000, "steps between checkpoints", resume=True),
    "train.progress": Field(True, "progress bar", resume=True),
    "train.tensorboard": Field(True, "also write TensorBoard event files (DIR/tensorboard)",
                               resume=True),
    "checkpoint.keep": Field(3, "checkpoints kept (plus the best one)", resume=True),
    "checkpoint.async_save": Field(True, "write checkpoints in the background", resume=True),
    # Evaluation
    "eval.every": Field(0, "> 0: evaluate eval.metrics every N steps", resume=True),
    "eval.metrics": Field("fd,kid,classes", "metrics during training (jaxgan/metrics), "
                          "comma-separated", resume=True),
    "eval.num_samples": Field(2000, "generated images per evaluation during training",
                              resume=True),
    "eval.best_metric": Field("fd", "the checkpoint with the lowest value is kept apart"),
    "eval.cache_dir": Field("~/.cache/jaxgan", "trained classifiers and real statistics",
                            resume=True),
    "eval.classifier_steps": Field(2000, "training steps of the in-domain classifier"),
    "eval.test_split": Field("test", "TFDS split for the classifier's accuracy and "
                             "memorisation"),
    "eval.max_real_features": Field(10000, "real features kept for KID / precision-recall"),
    "eval.memorization_samples": Field(16, "samples in the memorisation check", resume=True),
    "sample.grid_size": Field(64, "images in each sample grid", resume=True),
    "sample.grid_cols": Field(8, "columns of a sample grid", resume=True),
}

# Fields that moved: stored configs of older runs are read through this table.
MIGRATIONS = {f"model.{k}": f"model.mlp.{k}" for k in ("g_widths", "d_widths")}
MIGRATIONS.update({f"model.{k}": f"model.dcgan.{k}" for k in (
    "g_base_features", "d_base_features", "start_size", "g_stem", "d_head", "upsample")})


def all_fields() -> Dict[str, Field]:
  """FIELDS plus every registered architecture's block (model.<arch>.<field>)."""
  from jaxgan import models  # pylint: disable=g-import-not-at-top
  out = dict(FIELDS)
  for arch in models.ARCHITECTURES.names():
    for k, f in models.ARCHITECTURES.get(arch).fields.items():
      out[f"model.{arch}.{k}"] = f
  return out


def default_config() -> ml_collections.ConfigDict:
  nested = traverse_util.unflatten_dict({tuple(k.split(".")): f.default
                                         for k, f in all_fields().items()})
  return ml_collections.ConfigDict(nested)


def get_field(config, dotted: str):
  """config["a"]["b"] for "a.b"."""
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


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


def describe() -> str:
  """The schema as a Markdown table (field, default, meaning) for the README."""
  rows = ["| field | default | meaning |", "|---|---|---|"]
  for k, f in all_fields().items():
    flags = [w for w, on in (("resume-safe", f.resume), ("population", f.population)) if on]
    extra = f" ({', '.join(flags)})" if flags else ""
    rows.append(f"| `{k}` | `{f.default!r}` | {f.doc}{extra} |")
  return "\n".join(rows)
