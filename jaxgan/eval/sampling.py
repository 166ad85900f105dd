"""Drawing samples from a trained generator, and exporting them."""
from __future__ import annotations

import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.base import rng
from jaxgan.core.state import GAN, TrainState, sampling_params
from jaxgan.eval.visualize import save_grid, to_uint8
from jaxgan.base.errors import UserError


def make_labels(num_classes: int, n: int, choice: str = "even") -> Optional[np.ndarray]:
  """Labels for n conditional samples: "even" cycles through all classes, an integer
  string gives that class for every sample; None for an unconditional model."""
  if num_classes <= 0:
    if choice not in ("", "even", "all"):
      raise UserError(f"--labels={choice}: the model is unconditional (trained without "
                      "config.model.conditioning); drop --labels.")
    return None
  if choice in ("", "even", "all"):
    return (np.arange(n) % num_classes).astype(np.int32)
  try:
    c = int(choice)
  except ValueError:
    raise UserError(f"--labels must be 'even' or a class index, got {choice!r}.") from None
  if not 0 <= c < num_classes:
    raise UserError(f"--labels={c} is out of range: the model has {num_classes} classes "
                     f"(0..{num_classes - 1}).")
  return np.full((n,), c, np.int32)


def grid_inputs(gan: GAN, n: int, key, truncation: float = 0.0):
  """Latents (and labels) for a sample grid of about n images.

  Unconditional: n independent latents. Conditional: rows of `num_classes` images that
  share one z, the label running over the classes along the row, so only the conditioned
  attribute changes within a row (SEEDS.md section 5)."""
  if gan.num_classes <= 0:
    return gan.sample_latents(key, n, truncation), None
  rows = max(1, n // gan.num_classes)
  z = jnp.repeat(gan.sample_latents(key, rows, truncation), gan.num_classes, axis=0)
  labels = jnp.tile(jnp.arange(gan.num_classes, dtype=jnp.int32), rows)
  return z, labels


def generator_fn(gan: GAN, truncation: float = 0.0):
  """A jit-compiled G(params, stats, z, labels) in inference mode (BN running stats),
  returning images: a latent GAN's outputs are denormalised and decoded by its autoencoder
  (jaxgan/core/latent_space.py). For a style-based G (or GAT's), `truncation` > 0 is psi
  of the truncation trick in W (the latents of other G's are truncated where they are drawn,
  GAN.sample_latents)."""
  psi = truncation if (gan.style_based or gan.truncates) and truncation > 0 else 1.0
  if gan.latent is None:
    @jax.jit
    def gen(params, stats, z, labels):
      return gan.generate(params, stats, z, labels, train=False, truncation=psi)[0]
    return gen
  from flax import nnx  # pylint: disable=g-import-not-at-top
  graphdef, ae_state = gan.latent.decoder_parts()

  @jax.jit
  def gen_latent(params, stats, z, labels, ae_state):
    x = gan.generate(params, stats, z, labels, train=False, truncation=psi)[0]
    return nnx.merge(graphdef, ae_state).decode(gan.latent.denormalize(x))
  return lambda params, stats, z, labels: gen_latent(params, stats, z, labels, ae_state)


def _batch_for(gan: GAN, batch_size: int) -> int:
  """A latent GAN's decoder works at image size: its batch is bounded (about 4 Mi values
  per image batch, e.g. 21 images of 256x256x3) so decoding fits in memory."""
  if gan.latent is None:
    return batch_size
  return min(batch_size, max(1, (1 << 22) // int(np.prod(gan.latent.image_shape))))


def generate_latents(gan: GAN, state: TrainState, num: int, key, labels=None,
                     batch_size: int = 500) -> np.ndarray:
  """A latent GAN's raw outputs (normalised latents, float32) for the same draws as
  `generate` with the same key."""
  gen = jax.jit(lambda p, s, z, l: gan.generate(p, s, z, l, train=False)[0])
  params, out, batch_size = sampling_params(state), [], _batch_for(gan, batch_size)
  for start in range(0, num, batch_size):
    n = min(batch_size, num - start)
    z = gan.sample_latents(jax.random.fold_in(key, start), batch_size)
    lab = None if labels is None else jnp.asarray(np.resize(labels[start:start + n], batch_size))
    out.append(np.asarray(gen(params, state.g.stats, z, lab))[:n])
  return np.concatenate(out)


def generate(gan: GAN, state: TrainState, num: int, key, labels=None, batch_size: int = 500,
             truncation: float = 0.0):
  """`num` generated images as uint8 [num, H, W, C] (EMA weights when enabled); latents
  truncated to [-truncation, truncation] when it is > 0 (a style-based G: psi in W)."""
  gen = generator_fn(gan, truncation)
  params, stats = sampling_params(state), state.g.stats
  batch_size = _batch_for(gan, batch_size)
  out = []
  for start in range(0, num, batch_size):
    n = min(batch_size, num - start)
    z = gan.sample_latents(jax.random.fold_in(key, start), batch_size, truncation)
    lab = None
    if labels is not None:
      lab = jnp.asarray(np.resize(labels[start:start + n], batch_size))
    out.append(to_uint8(gen(params, stats, z, lab))[:n])
  return np.concatenate(out)


def export(gan: GAN, state: TrainState, workdir: str, num: int, seed: int,
           labels_choice: str = "even", grid_size: int = 64, truncation: float = 0.0,
           latents: bool = False) -> dict:
  """Writes DIR/samples.npz (images uint8 NxHxWxC, labels when conditional) and
  DIR/samples.png (a grid of the first `grid_size`); `truncation` > 0 samples with the
  truncation trick (the npz records it). A latent run's images are decoded; with
  `latents` the npz also holds G's raw outputs for the same draws ("latents")."""
  if latents and truncation:
    raise UserError("--export_latents with --truncation: export the latents untruncated.")
  labels = make_labels(gan.num_classes, num, labels_choice)
  key = rng.stream(rng.root_key(seed), "export")
  images = generate(gan, state, num, key, labels, truncation=truncation)
  arrays = {"images": images, "truncation": np.float32(truncation)}
  if latents:
    arrays["latents"] = generate_latents(gan, state, num, key, labels)
  if labels is not None:
    arrays["labels"] = labels
  path = os.path.join(workdir, "samples.npz")
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)
  png_path = os.path.join(workdir, "samples.png")
  if labels is not None and labels_choice in ("", "even", "all"):
    z, grid_labels = grid_inputs(gan, grid_size, rng.stream(key, "grid"), truncation)
    grid_images = to_uint8(generator_fn(gan, truncation)(sampling_params(state),
                                                         state.g.stats, z, grid_labels))
    png = save_grid(grid_images, png_path, ncol=gan.num_classes)
  else:
    png = save_grid(images[:min(grid_size, num)], png_path)
  return {"npz": path, "png": png, "num": num}
