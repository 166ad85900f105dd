"""Base config: every field jaxgan reads, with its default (defined in jaxgan/config.py).
Variants import and override it.

Any field can be overridden from the command line, e.g. `--config.train.steps=100`,
`--config.loss=hinge`, `--config.optim.d.lr=1e-4`; an unknown field is an error.
"""
from jaxgan.config import default_config


def get_config():
  return default_config()
