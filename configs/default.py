"""Base config: every field jaxgan reads, with its default (defined in jaxgan/config.py).
Variants import and override it.

Any field can be overridden from the command line, e.g. `--config.train.steps=100`,
`--config.loss=hinge`, `--config.optim.d.lr=1e-4`; an unknown field is an error.
"""
import os

from jaxgan.config import default_config

# The prepared TFDS datasets beside this repository (../shared/data/tensorflow_datasets),
# as an absolute path so a config works from any directory.
SHARED_TFDS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                            "data", "tensorflow_datasets"))


def get_config():
  return default_config()


def split_variant(variant: str, module: str, valid) -> "tuple[str, int | None]":
  """'NAME' or 'NAME,STEPS' -> (NAME, STEPS or None). STEPS lets a config size a run whose
  schedules follow its length (cosine learning rates and the like) to another number of
  generator steps -- e.g. to the time a comparison gives it on another CPU -- without
  restating its schedules: `--config configs/r3gan2.py:fashion,1800`. Raises ValueError
  (shown in one line by launch.py) for an unknown name or a STEPS that is not >= 1."""
  name, comma, steps = variant.partition(",")
  if comma and not steps:
    raise ValueError(f"{module} variant {variant!r}: nothing after the comma; give "
                     f"'{name}' or '{name},STEPS'.")
  if name not in valid:
    raise ValueError(f"Unknown {module} variant {name!r}; valid: {', '.join(valid)} "
                     "(each may add ',STEPS').")
  if not steps:
    return name, None
  if not steps.isdigit() or int(steps) < 1:
    raise ValueError(f"{module} variant {variant!r}: STEPS after the comma must be an "
                     f"integer >= 1 (generator steps), e.g. '{name},2000'.")
  return name, int(steps)
