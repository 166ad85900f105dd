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
