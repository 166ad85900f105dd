import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from configs import default  # noqa: E402


def tiny_config(**overrides):
  """A CPU-sized MLP GAN on 256 embedded images; dotted keys override fields."""
  c = default.get_config()
  c.model.latent_dim = 8
  c.model.mlp.g_widths = (32,)
  c.model.mlp.d_widths = (32,)
  c.data.batch_size = 16
  c.data.max_examples = 256
  c.train.steps = 6
  c.train.log_every = 2
  c.train.sample_every = 3
  c.train.checkpoint_every = 3
  c.train.progress = False
  c.checkpoint.async_save = False
  c.sample.grid_size = 4
  return set_fields(c, overrides)


def set_fields(c, overrides):
  """Sets dotted config fields ({"model.r3gan.blocks": (1,)}) on `c` and returns it."""
  for k, v in overrides.items():
    node = c
    parts = k.split(".")
    for p in parts[:-1]:
      node = node[p]
    node[parts[-1]] = v
  return c


@pytest.fixture
def tiny():
  return tiny_config
