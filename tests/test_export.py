"""Every config's train step lowers for GPU and TPU (jax.export), checked on a CPU-only
machine: no CPU-only custom call (the oneDNN convolutions, jaxgan/cpu/onednn.py) and no float64
reaches the accelerator program, whatever backend this process runs on.

The state and batch are abstract (jax.eval_shape), so a paper-size config costs tracing
and lowering only, never its memory. Variants that differ only in sizes, data or step
counts lower the same program pieces; one of each distinct program is exported.
"""
import functools
import importlib
import os

import jax
import jax.numpy as jnp
import pytest

from jaxgan.base import sizes
from jaxgan.cpu import onednn
from jaxgan.core import state as state_lib, train_step as ts
from jaxgan.run import platform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
               if f.endswith(".py") and f not in ("__init__.py", "default.py"))
ALL = [(f, v) for f in FILES for v in importlib.import_module(f"configs.{f}").VARIANTS]
_task = lambda f, v: importlib.import_module(f"configs.{f}").get_config(v).task
CONFIGS = [(f, v) for f, v in ALL if _task(f, v) == "gan"]
AUTOENCODERS = [(f, v) for f, v in ALL if _task(f, v) == "autoencoder"]


def _program_signature(name, variant):
  """What decides which ops a train step contains: variants that differ only in sizes,
  data or step counts (e.g. :fashion and :cifar10) lower the same program pieces."""
  c = importlib.import_module(f"configs.{name}").get_config(variant)
  regs = tuple(sorted(r["name"] if isinstance(r, dict) else r for r in c.regularizers))
  return (c.model.arch, c.model.conditioning, c.model.g_norm, c.model.d_norm,
          c.model.d_spectral_norm, c.loss, c.penalty, regs, c.augment.policy,
          bool(c.ema_decay or c.ema_halflife_kimg), c.optim.d.name)


def _distinct(configs):
  first = {}
  for nv in configs:
    first.setdefault(_program_signature(*nv), nv)
  return list(first.values())


DISTINCT = _distinct(CONFIGS)


def abstract_step(config):
  """(step function with every lazy term on, abstract state, abstract batch). One critic
  update per step: more repeat the same program pieces and only lengthen the tracing
  (a 5-step BigGAN step takes minutes to trace on this CPU)."""
  config = config.copy_and_resolve_references()
  config.train.n_critic = 1
  shape = (*sizes.hw(config.data.image_size), config.data.channels)
  classes = 10 if config.model.conditioning != "none" else 0
  built = {}

  def create():
    gan, state = state_lib.create(config, shape, classes)
    built["gan"] = gan
    return state
  state = jax.eval_shape(create)
  step = ts.make_train_step(built["gan"], config)
  n, b = config.train.n_critic, config.data.batch_size
  batch = {"images": jax.ShapeDtypeStruct((n, b, *shape), jnp.uint8)}
  if classes:
    batch["labels"] = jax.ShapeDtypeStruct((n, b), jnp.int32)
  return functools.partial(step, pattern=step.__self__.lazy_pattern(0)), state, batch


def test_every_config_file_lists_its_variants():
  assert len(CONFIGS) >= 30 and ("wgan_gp", "default") in CONFIGS
  assert ("r3gan", "fashion") in CONFIGS and ("stylegan2", "paper256") in CONFIGS
  # every architecture, loss and conditioning of the configs is exported
  assert {n for n, _ in DISTINCT} | {n for n, _ in AUTOENCODERS} == set(FILES)
  assert len(DISTINCT) >= 20 and ("autoencoder", "fashion") in AUTOENCODERS


@pytest.mark.parametrize("name,variant", DISTINCT)
def test_train_step_lowers_for_gpu_and_tpu(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  fn, state, batch = abstract_step(config)
  with platform.speedups("auto"):   # traced on this CPU host, under the oneDNN provider
    exported = jax.export.export(jax.jit(fn), platforms=("cuda", "tpu"))(state, batch)
  text = exported.mlir_module()
  assert exported.platforms == ("cuda", "tpu")
  assert onednn.TARGET not in text and "f64" not in text
  leaves = jax.tree.leaves(state)     # outputs: (state, metrics), the state unchanged in shape
  assert [(a.shape, a.dtype) for a in exported.out_avals[:len(leaves)]] == [
      (a.shape, a.dtype) for a in leaves]


def _lowers_for_accelerators(fn, *args):
  with platform.speedups("auto"):   # traced on this CPU host, under the oneDNN provider
    exported = jax.export.export(jax.jit(fn), platforms=("cuda", "tpu"))(*args)
  assert exported.platforms == ("cuda", "tpu")
  text = exported.mlir_module()
  assert onednn.TARGET not in text and "f64" not in text


def test_a_latent_train_step_lowers_for_gpu_and_tpu():
  """The latent path (the step's draw of mean + std * eps, normalised) on R3GAN2."""
  from configs import r3gan2
  from jaxgan.core import latent_space
  config = r3gan2.get_config("fashion_latent")
  config.model.r3gan2.widths, config.model.r3gan2.blocks = (32,), (1,)
  space = latent_space.LatentSpace((0.1,) * 4, (2.0,) * 4, "", "", (32, 32, 1))
  built = {}

  def create():
    gan, state = state_lib.create(config, (8, 8, 4), 0, latent=space)
    built["gan"] = gan
    return state
  state = jax.eval_shape(create)
  step = ts.make_train_step(built["gan"], config)
  latents = jax.ShapeDtypeStruct((1, config.data.batch_size, 8, 8, 4), jnp.float32)
  _lowers_for_accelerators(functools.partial(step, pattern=step.__self__.lazy_pattern(0)),
                           state, {"images": latents, "stds": latents})


@pytest.mark.parametrize("name,variant", AUTOENCODERS)
def test_the_autoencoder_step_lowers_for_gpu_and_tpu(name, variant):
  from flax import nnx
  from jaxgan.pretrained import autoencoder_kl as ae
  from jaxgan.run import autoencoder as trainer
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  cfg = trainer.network_config(config, config.data.channels)
  graphdef, params = nnx.split(ae.abstract(cfg))
  optimizer = trainer.make_optimizer(config)
  state = {"params": params, "opt": jax.eval_shape(optimizer.init, params),
           "step": jax.ShapeDtypeStruct((), jnp.int32)}
  step = trainer.make_step(graphdef, optimizer, 0, {"l1": 1.0, "l2": 1.0, "kl": 1e-6})
  h, w = sizes.hw(config.data.image_size)
  images = jax.ShapeDtypeStruct((config.data.batch_size, h, w, config.data.channels), jnp.uint8)
  _lowers_for_accelerators(step, state, images)


def test_the_cpu_lowering_of_the_same_step_uses_onednn():
  """The check above is not vacuous: on CPU the same trace carries the custom call."""
  ok, why = onednn.available()
  assert ok, why
  config = importlib.import_module("configs.wgan_gp").get_config("default")
  fn, state, batch = abstract_step(config)
  with platform.speedups("auto"):
    assert onednn.TARGET in jax.jit(fn).lower(state, batch).as_text()
    allow = [jax.export.DisabledSafetyCheck.custom_call(onednn.TARGET)]
    both = jax.export.export(jax.jit(fn), platforms=("cpu", "cuda"), disabled_checks=allow)(
        state, batch)
  assert onednn.TARGET in both.mlir_module()   # one program, a branch per platform
  assert both.platforms == ("cpu", "cuda")
