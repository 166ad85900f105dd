"""Training a KL autoencoder for latent GANs: `--config.task=autoencoder`
(configs/autoencoder.py).

The network is diffusers' AutoencoderKL (jaxgan/pretrained/autoencoder_kl.py) at the
widths of `config.autoencoder`, trained as Rombach et al. (CVPR 2022, App. G; the
taming-transformers / latent-diffusion `LPIPSWithDiscriminator` loss without its LPIPS and
adversarial terms, which a 2-core CPU cannot afford and a 32-pixel grayscale dataset does
not need): for a batch of images x in [-1, 1], z = mean + std * eps from q(z|x), and

  loss = mean over the batch of [ l1_weight * sum |x - D(z)| + l2_weight * sum (x - D(z))^2
                                  + kl_weight * KL(q(z|x) || N(0, I)) ]

with the sums over pixels (KL over latent elements), LDM's normalisation, so its
kl_weight of 1e-6 means the same here. The optimizer is `config.optim.g`.

The run is a run like a GAN's: the deterministic batch stream of config.data and seed,
a noise key folded from (seed, step), atomic Orbax checkpoints of the whole state
(parameters, optimizer, step) every train.checkpoint_every, bit-exact resume, a save on
SIGTERM/SIGINT, train.max_seconds, metrics.jsonl. At the end it writes:

  WORKDIR/autoencoder/   config.json + diffusion_pytorch_model.safetensors (diffusers'
                         format; `model.decoder` and `prepare --encoder` load it like a
                         downloaded VAE), with shift_factor and scaling_factor set to the
                         mean and 1/std of the latent means of `autoencoder.scale_images`
                         training images (so scaled latents have unit variance)
  WORKDIR/reconstructions.png   held-out images (odd rows) over their reconstructions
  WORKDIR/autoencoder_eval.json reconstruction L1, PSNR and (when eval.metrics has fd
                         and the data has labels) the in-domain FD of the reconstructed
                         held-out split (eval.test_split; else the last 2,000 training
                         images) beside that of the split itself
A resume with a larger train.steps exports again in place: latent datasets encoded with
the earlier export no longer match its weights (their sha256 says so) and must be
encoded again.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgan import data as data_lib
from jaxgan.base import sizes
from jaxgan.base.errors import Preempted, UserError
from jaxgan.config import config_from_dict, config_to_dict, incompatible_fields
from jaxgan.core.train_step import to_float   # uint8 -> [-1, 1], as the GAN's step
from jaxgan.eval import visualize
from jaxgan.pretrained import autoencoder_files as files
from jaxgan.pretrained import autoencoder_kl as ae
from jaxgan.run import checkpoint as ckpt_lib
from jaxgan.run import platform, stopping
from jaxgan.run import workdir as workdir_lib
from jaxgan.run.writers import MetricWriter


def network_config(config, channels: int) -> ae.AEConfig:
  a = config.autoencoder
  widths = tuple(int(w) for w in a.block_out_channels)
  bad = [w for w in widths if w % a.norm_num_groups]
  if bad:
    raise UserError(f"config.autoencoder.norm_num_groups={a.norm_num_groups} does not divide "
                    f"the width(s) {bad} of autoencoder.block_out_channels={widths}; pick a "
                    "divisor of every width.")
  return ae.AEConfig(in_channels=channels, out_channels=channels, block_out_channels=widths,
                     layers_per_block=int(a.layers_per_block),
                     latent_channels=int(a.latent_channels),
                     norm_num_groups=int(a.norm_num_groups),
                     mid_block_add_attention=bool(a.mid_attention))


def kl_to_standard_normal(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over the latent."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar, axis=(1, 2, 3))


def loss_fn(model: ae.AutoencoderKL, x, key, weights) -> tuple:
  mean, logvar = model.moments(x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
  err = model.decode(z) - x
  l1 = jnp.sum(jnp.abs(err), axis=(1, 2, 3))
  l2 = jnp.sum(jnp.square(err), axis=(1, 2, 3))
  kl = kl_to_standard_normal(mean, logvar)
  loss = jnp.mean(weights["l1"] * l1 + weights["l2"] * l2 + weights["kl"] * kl)
  pixels = np.prod(x.shape[1:])
  mse = jnp.mean(l2) / pixels
  return loss, {"loss": loss, "l1": jnp.mean(l1) / pixels, "mse": mse, "kl": jnp.mean(kl),
                "psnr": 10.0 * jnp.log10(4.0 / mse), "latent_std": jnp.mean(jnp.exp(0.5 * logvar))}


def make_step(graphdef, optimizer, seed: int, weights: Dict[str, float]):
  base = jax.random.key(seed)

  def step(state, images):
    key = jax.random.fold_in(base, state["step"])

    def objective(params):
      return loss_fn(nnx.merge(graphdef, params), to_float(images), key, weights)

    grads, metrics = jax.grad(objective, has_aux=True)(state["params"])
    updates, opt = optimizer.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "opt": opt, "step": state["step"] + 1}, metrics

  return jax.jit(step, donate_argnums=0)


def make_optimizer(config):
  o = config.optim.g
  if o.name != "adam":
    raise UserError(f"config.optim.g.name={o.name!r}: task=autoencoder trains with Adam; set "
                    "--config.optim.g.name=adam.")
  return optax.adam(o.lr, b1=o.b1, b2=o.b2, eps=o.eps)


def _check_data(cfg: ae.AEConfig, data) -> None:
  h, w, _ = data.image_shape
  f = cfg.downsampling
  if h % f or w % f:
    raise UserError(f"config.data.image_size={sizes.text((h, w))}: an autoencoder of "
                    f"{len(cfg.block_out_channels)} levels halves it {f.bit_length() - 1} "
                    f"times, so each side must be a multiple of {f}; set data.image_size to one "
                    "(e.g. 32) or change autoencoder.block_out_channels.")


def train(config, workdir: str):
  """Trains (or resumes) the autoencoder of `config` in `workdir`; exports it at the end."""
  from jaxgan.run import validate as validate_lib  # pylint: disable=g-import-not-at-top
  validate_lib.validate(config)
  workdir_lib.prepare(workdir)
  with workdir_lib.lock_for_training(workdir), platform.speedups(config.train.cpu_conv):
    if jax.process_count() > 1:
      raise UserError("config.task=autoencoder trains in one process; run it without "
                      "jax.distributed (the autoencoders it trains are small).")
    if data_lib.latent_manifest(config.data) is not None:
      raise UserError(f"config.data.folder={config.data.folder!r} is a latent dataset; an "
                      "autoencoder trains on images: point data at the images.")
    data = data_lib.open_data(config.data, 0, 1, say=print)
    if not isinstance(data, data_lib.ImageData):
      data = data.reference(10 ** 9)     # the whole dataset decoded (autoencoders are small)
    cfg = network_config(config, data.image_shape[-1])
    _check_data(cfg, data)
    model = ae.create(cfg, config.seed)
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer(config)
    state = {"params": params, "opt": optimizer.init(params), "step": jnp.int32(0)}
    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 keep=config.checkpoint.keep,
                                 async_save=config.checkpoint.async_save)
    try:
      state = _restore(ckpt, state, config, workdir)
      _write_config(config, workdir)     # after the check: a refused resume changes nothing
      print(f"Autoencoder {ae.num_parameters(model):,} parameters, latents "
            f"{tuple(d // cfg.downsampling for d in data.image_shape[:2])} x "
            f"{cfg.latent_channels}; data {data.name}: {len(data.images)} images.", flush=True)
      state, preempted = _loop(config, workdir, data, graphdef, optimizer, state, ckpt)
    finally:
      ckpt.close()
    if preempted is not None:
      raise Preempted(preempted, int(state["step"]))
    model = nnx.merge(graphdef, state["params"])
    return export(config, workdir, model, data)


def _write_config(config, workdir):
  path = os.path.join(workdir, "config.json")
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(path + ".tmp", path)


def _restore(ckpt, state, config, workdir):
  step = ckpt.latest_step()
  if step is None:
    return state
  stored = ckpt.read_meta(step).get("config", {})
  bad = incompatible_fields(config_to_dict(config_from_dict(stored)), config_to_dict(config))
  if bad:
    raise UserError(f"{workdir!r} holds a run with a different config; these fields differ: "
                    f"{', '.join(bad)}. Use a new --workdir, or restore the old values.")
  state, _ = ckpt.restore(state, step)
  print(f"Resumed from the checkpoint of step {step} in {workdir}", flush=True)
  return state


def _loop(config, workdir, data, graphdef, optimizer, state, ckpt):
  a, t = config.autoencoder, config.train
  weights = {"l1": float(a.l1_weight), "l2": float(a.l2_weight), "kl": float(a.kl_weight)}
  step_fn = make_step(graphdef, optimizer, config.seed, weights)
  batches = data_lib.make_batches(data, config.data.batch_size, 1, config.seed)
  writer = MetricWriter(workdir, tensorboard=t.tensorboard)
  meta = {"config": config_to_dict(config), "task": "autoencoder"}
  done = int(state["step"])
  budget, sums, t0 = float(t.max_seconds), [], time.perf_counter()
  preempted, began = None, None   # began: after the first (compiling) step
  try:
    with stopping.Preemption() as pre:
      while done < t.steps:
        state, m = step_fn(state, batches.for_step(done)["images"][0])
        done += 1
        sums.append(m)
        began = began or time.perf_counter()
        if done % t.log_every == 0 or done == t.steps:
          row = {k: float(np.mean([float(x[k]) for x in sums])) for k in sums[0]}
          if not np.isfinite(row["loss"]):
            raise FloatingPointError(f"autoencoder loss is {row['loss']} at step {done}: "
                                     "lower config.optim.g.lr.")
          row["steps_per_second"] = len(sums) / (time.perf_counter() - t0)
          writer.row(done, row)
          print(f"step {done}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
          sums, t0 = [], time.perf_counter()
        if done % t.checkpoint_every == 0 or done == t.steps:
          ckpt.save(done, state, {**meta, "step": done}, force=True)
        if pre.signal is not None:
          preempted = pre.signal
          break
        if budget and time.perf_counter() - began > budget:
          print(f"config.train.max_seconds={budget:g} reached at step {done}.", flush=True)
          break
      if done not in ckpt.all_steps():
        ckpt.save(done, state, {**meta, "step": done}, force=True)
      ckpt.wait()
  finally:
    writer.close()
  return state, preempted


def latent_statistics(model, images: np.ndarray, batch: int = 256):
  """Mean and std (scalars) of the latent means of `images` (uint8)."""
  enc = jax.jit(lambda x: model.moments(to_float(x))[0])
  z = np.concatenate([np.asarray(enc(images[i:i + batch]))
                      for i in range(0, len(images), batch)])
  return float(z.mean()), float(z.std())


def reconstruct(model, images: np.ndarray, batch: int = 256) -> np.ndarray:
  """uint8 reconstructions D(mean(E(x))) of uint8 images."""
  f = jax.jit(lambda x: model.decode(model.moments(to_float(x))[0]))
  out = [np.asarray(f(images[i:i + batch])) for i in range(0, len(images), batch)]
  return visualize.to_uint8(np.concatenate(out))


def export(config, workdir: str, model, data) -> dict:
  """The diffusers directory, the reconstruction grid and the evaluation (see above)."""
  n = min(int(config.autoencoder.scale_images), len(data.images))
  spread = np.unique(np.linspace(0, len(data.images) - 1, n).astype(np.int64))
  shift, std = latent_statistics(model, data.images[spread])   # not only the first classes
  model.cfg = dataclasses.replace(model.cfg, shift_factor=shift, scaling_factor=1.0 / std)
  out_dir = os.path.join(workdir, "autoencoder")
  sha = files.save(model, out_dir)
  from jaxgan.eval.evaluate import Evaluator, load_heldout, write_json  # pylint: disable=g-import-not-at-top
  held = load_heldout(config.data, config.eval.test_split, print)
  # without a held-out split: the last 2,000 training images (the json says which)
  real = held.images if held is not None else data.images[-2000:]
  recon = reconstruct(model, real)
  err = recon.astype(np.float32) / 127.5 - real.astype(np.float32) / 127.5
  rows = min(4, len(real) // 8)
  pairs = np.stack([real[:8 * rows].reshape(rows, 8, *real.shape[1:]),
                    recon[:8 * rows].reshape(rows, 8, *real.shape[1:])], axis=1)
  visualize.save_grid(pairs.reshape(16 * rows, *real.shape[1:]),
                      os.path.join(workdir, "reconstructions.png"), ncol=8)
  result = {"directory": out_dir, "weights_sha256": sha, "shift_factor": shift,
            "scaling_factor": 1.0 / std, "compared_images": int(len(real)),
            "compared_split": config.eval.test_split if held is not None else "train (last)",
            "l1": float(np.abs(err).mean()),
            "psnr": float(10 * np.log10(4.0 / np.mean(np.square(err))))}
  wanted = [m.strip() for m in config.eval.metrics.split(",")]
  if "fd" in wanted and data.labels is not None and data.num_classes > 1:
    ev = Evaluator(config, data, log=print, metrics="fd")
    result["fd_reconstructions"] = float(ev(recon, metrics="fd")["fd"])
    result["fd_compared_images"] = float(ev(real, metrics="fd")["fd"])
  write_json(result, os.path.join(workdir, "autoencoder_eval.json"))
  print("Autoencoder written to " + out_dir + ": " + ", ".join(
      f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, float)), flush=True)
  return result
