"""A GAN trained in a frozen autoencoder's latent space (GAT, Gu et al.; R3GAN2's
ImageNet-256 presets): what G and D see, and how it maps back to the autoencoder.

The data are latent datasets (jaxgan/data/encode_latents.py): per image the mean and std
of q(z|x). Each step draws z = mean + std * eps (eps from the step's own key, so a resumed
run draws the same) and hands G and D the normalised x = (z - shift) / scale, per channel:

  data.latent_norm=channel      shift, scale = the dataset's channel_mean, channel_std
                                (R3GAN2 standardises its latents per channel)
  data.latent_norm=autoencoder  the autoencoder's own shift_factor and 1 / scaling_factor
                                (as diffusion pipelines scale SD / FLUX latents)
  data.latent_norm=none         shift 0, scale 1

G's outputs are in that normalised space; to look at them and to score them they are
mapped back (z = x * scale + shift) and decoded by the autoencoder (jaxgan/eval/sampling.py).
`LatentSpace` is static (hashable): a field of `state.GAN`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from jaxgan.base import sizes
from jaxgan.base.errors import UserError

NORMS = ("channel", "autoencoder", "none")


@dataclasses.dataclass(frozen=True)
class LatentSpace:
  shift: Tuple[float, ...]        # per channel
  scale: Tuple[float, ...]        # per channel
  decoder: str                    # the autoencoder directory (diffusers format)
  weights_sha256: str             # of its weights file, as the dataset's manifest says
  image_shape: Tuple[int, int, int]   # the images the latents decode to

  def normalize(self, z: jax.Array) -> jax.Array:
    return (z - jnp.asarray(self.shift, z.dtype)) / jnp.asarray(self.scale, z.dtype)

  def denormalize(self, x: jax.Array) -> jax.Array:
    return x * jnp.asarray(self.scale, x.dtype) + jnp.asarray(self.shift, x.dtype)

  def decoder_parts(self):
    """(graphdef, state) of the autoencoder that decodes this space, loaded once per
    process and checked to be the one that encoded the data."""
    return _decoder(self.decoder, self.weights_sha256)

  def decode(self, x: jax.Array) -> jax.Array:
    """Normalised latents -> images in [-1, 1] (the autoencoder's decoder, float32)."""
    from flax import nnx  # pylint: disable=g-import-not-at-top
    graphdef, state = self.decoder_parts()
    return nnx.merge(graphdef, state).decode(self.denormalize(x.astype(jnp.float32)))

  def draw(self, means: jax.Array, stds: jax.Array, key) -> jax.Array:
    """The normalised real batch of one step: normalize(mean + std * eps)."""
    eps = jax.random.normal(key, means.shape, jnp.float32)
    return self.normalize(means.astype(jnp.float32) + stds.astype(jnp.float32) * eps)


_DECODERS = {}


def _decoder(directory: str, sha256: str):
  if (directory, sha256) not in _DECODERS:
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from jaxgan.pretrained import autoencoder_files  # pylint: disable=g-import-not-at-top
    try:
      model, sha = autoencoder_files.load(directory)
    except UserError as e:
      raise type(e)(f"config.model.decoder (the latent run's autoencoder): {e}") from None
    if sha != sha256:
      raise UserError(f"config.model.decoder={directory!r} holds weights with sha256 "
                      f"{sha[:12]}..., but the latent dataset was encoded by {sha256[:12]}...; "
                      "decode with the autoencoder that encoded the data.")
    _DECODERS[(directory, sha256)] = nnx.split(model)
  return _DECODERS[(directory, sha256)]


def from_description(latent: dict, norm: str, decoder: str = "") -> LatentSpace:
  """The LatentSpace of a latent dataset (its manifest's description, records.py) under
  `data.latent_norm`; `decoder` (config.model.decoder) '' means the encoder's own
  directory as the manifest records it."""
  if norm not in NORMS:
    raise UserError(f"config.data.latent_norm={norm!r} is not valid; valid: {', '.join(NORMS)}.")
  enc = latent["encoder"]
  c = int(latent["latent_shape"][-1])
  if norm == "channel":
    shift, scale = latent["channel_mean"], latent["channel_std"]
  elif norm == "autoencoder":
    if not enc.get("scaling_factor"):
      raise UserError(f"config.data.latent_norm='autoencoder': the encoder "
                      f"({enc.get('class_name')}) has no scaling_factor; use "
                      "data.latent_norm='channel' (the dataset's own statistics).")
    shift, scale = [enc.get("shift_factor") or 0.0] * c, [1.0 / enc["scaling_factor"]] * c
  else:
    shift, scale = [0.0] * c, [1.0] * c
  src = latent["image_source"]
  return LatentSpace(tuple(float(s) for s in shift), tuple(float(s) for s in scale),
                     decoder or enc["directory"], enc["weights_sha256"],
                     (*sizes.hw(src["image_size"]), int(src["channels"])))


def of(data, config) -> Optional[LatentSpace]:
  """The run's LatentSpace, or None for images; refuses a decoder without latent data."""
  latent = getattr(data, "latent", None)
  decoder = config.model.get("decoder", "")
  if latent is None:
    if decoder:
      raise UserError(f"config.model.decoder={decoder!r} is set, but the data are images, not "
                      "latents: point config.data.folder at a latent dataset (python -m "
                      "jaxgan.data.prepare SRC OUT --encoder DIR) or clear model.decoder.")
    return None
  return from_description(latent, config.data.get("latent_norm", "channel"), decoder)
