"""REPA for the discriminator: D's last-block tokens on real images aligned to a frozen
DINOv2's features of the same images, as GAT does.

Hyun, Lee & Heo 2025, "Scalable GANs with Transformers" (arXiv 2509.24935), code
hse1032/GAT@21a2dd09, losses/Rp_PT_loss.py (RpGANPTLoss.step_disc, encode_feature,
preprocess_raw_image, resize_spatial); after REPA (Yu et al. 2025), which aligns a
diffusion transformer's tokens. Per real image, with D's projector outputs (cls c and
patch tokens p_j: jaxgan/core/models/gat.py, `represent`) and the encoder's normed cls
token e and patch tokens f_j:

  term = (1 - cos(c, e)) + mean_j (1 - cos(p_j, f_j)),   averaged over the batch

added to D's loss with weight 1 (the reference's proj_coeff). The encoder sees the raw
image (here: the real batch in [-1, 1]; a latent dataset's real latents decoded by its
autoencoder), mapped to [0, 1], normalised with ImageNet's statistics and resized to 224
px (jaxgan/pretrained/dinov2.py), then moved by the same translation and flip as D's
input (its augmentation policy's geometric steps, `augment.geometry`). When D has fewer
tokens than the encoder (16 x 16 at 224 px), the encoder's grid is resized to D's
(PyTorch's bicubic), as the reference does. No gradient reaches the encoder.

Differences, on purpose:
- Translation. The reference replays D's shift t (pixels of D's h-pixel input) on the
  224-px view as floor(t * h / 224), so its targets move by at most one pixel; we move the
  view by the same fraction of its side, round(t * 224 / h), so that D's tokens and their
  targets show the same part of the image (what replaying the parameters is for).
- Latent data. The reference encodes the raw images stored with the latents; a jaxgan
  latent dataset holds only q(z|x), so the targets are features of the decoded real
  latents (the autoencoder's reconstruction). This costs one decoder pass per D update.
- The encoder runs in float32 (the reference: under autocast).

Options: `encoder` (a local DINOv2 weights file; '' turns the term off with one logged
line, as GAT without --enc-type; a path that is not a file is refused, unless `optional`
is True: then the term is off with the same line, as configs/gat.py's presets have it)
and `resolution` (224).
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
from absl import logging

from jaxgan.core.regularizers import REGULARIZERS, Context, Regularizer
from jaxgan.ops import resize
from jaxgan.pretrained import dinov2

RESOLUTION = 224


def available(options) -> bool:
  path = str(options.get("encoder") or "")
  return bool(path) and os.path.isfile(os.path.expanduser(path))


@functools.lru_cache(maxsize=8)
def _say_off(path: str) -> None:
  logging.warning("REPA is off: %s; for GAT's alignment of D to DINOv2 give a local "
                  "ViT-B/14 weights file as the repa entry's 'encoder' (torch hub's "
                  "dinov2_vitb14_pretrain.pth or a safetensors file).",
                  f"no file at {path!r}" if path else "no encoder file given")


def encoder_of(options) -> dinov2.Encoder:
  return dinov2.load(os.path.expanduser(str(options["encoder"])),
                     int(options.get("resolution", RESOLUTION)))


def cosine_distance(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
  """1 - cos(a, b) along the last axis (PyTorch's cosine_similarity, eps 1e-8)."""
  dot = jnp.sum(a * b, axis=-1)
  norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  return 1.0 - dot / jnp.maximum(norms, eps)


def alignment(cls, patches, target_cls, target_patches) -> jax.Array:
  """The batch mean of (1 - cos) of the cls vectors plus the token mean of (1 - cos) of
  the patch grids (N, h, w, C); the targets' grid is resized to D's when they differ."""
  h, w = patches.shape[1:3]
  target_patches = resize.bicubic(target_patches, h, w)
  per_image = cosine_distance(cls, target_cls) + jnp.mean(
      cosine_distance(patches, target_patches), axis=(1, 2))
  return jnp.mean(per_image)


def repa(ctx: Context):
  if not available(ctx.options):
    _say_off(str(ctx.options.get("encoder") or ""))
    return jnp.zeros((), jnp.float32), ctx.state
  enc = encoder_of(ctx.options)
  view = dinov2.preprocess(jax.lax.stop_gradient(ctx.real_images()), enc)
  view = ctx.replay_geometry(view)
  target_cls, target_patches = jax.lax.stop_gradient(dinov2.features(enc, view))
  cls, patches = ctx.represent_real()
  return alignment(cls, patches, target_cls, target_patches), ctx.state


def files(options):
  return [os.path.expanduser(str(options["encoder"]))] if available(options) else []


REGULARIZERS.register("repa", Regularizer(
    repa, sides=("d",), weight=1.0,
    options={"encoder": "", "resolution": RESOLUTION, "optional": False},
    files=files))
