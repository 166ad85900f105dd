"""Walking a trained generator's latent space: interpolations (PNG strip, animated GIF),
class grids for conditional models, nearest training images of samples."""
from __future__ import annotations

import os
from typing import Dict, Optional

import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxgan.base import rng
from jaxgan.eval import sampling
from jaxgan.core.state import GAN, TrainState, sampling_params
from jaxgan.eval.visualize import grid, save_png, to_uint8
from jaxgan.base.errors import UserError


def lerp(z0, z1, t):
  """Linear interpolation; t in [0, 1] (broadcast over a leading axis)."""
  t = jnp.asarray(t, jnp.float32)[:, None]
  return (1 - t) * z0[None] + t * z1[None]


def slerp(z0, z1, t, eps: float = 1e-7):
  """Spherical interpolation (White 2016, "Sampling generative networks"): follows the
  great circle, keeping the norm typical of Gaussian latents; falls back to lerp for
  (anti)parallel endpoints."""
  t = jnp.asarray(t, jnp.float32)[:, None]
  n0, n1 = jnp.linalg.norm(z0), jnp.linalg.norm(z1)
  cos = jnp.clip(jnp.dot(z0 / n0, z1 / n1), -1.0, 1.0)
  omega = jnp.arccos(cos)
  so = jnp.sin(omega)
  safe = so > eps
  w0 = jnp.where(safe, jnp.sin((1 - t) * omega) / jnp.where(safe, so, 1.0), 1 - t)
  w1 = jnp.where(safe, jnp.sin(t * omega) / jnp.where(safe, so, 1.0), t)
  return w0 * z0[None] + w1 * z1[None]


def interpolate(gan: GAN, state: TrainState, z0, z1, steps: int, method: str = "linear",
                label: Optional[int] = None) -> np.ndarray:
  """uint8 images along the path from G(z0) to G(z1), endpoints included."""
  if method not in ("linear", "spherical"):
    raise UserError(f"Unknown interpolation {method!r}; valid: linear, spherical.")
  t = jnp.linspace(0.0, 1.0, steps)
  z = (lerp if method == "linear" else slerp)(z0, z1, t)
  labels = None
  if gan.num_classes > 0:
    labels = jnp.full((steps,), 0 if label is None else label, jnp.int32)
  images = sampling.generator_fn(gan)(sampling_params(state), state.g.stats, z, labels)
  return to_uint8(images)


def save_gif(images: np.ndarray, path: str, duration_ms: int = 120, scale: int = 1) -> str:
  frames = []
  for im in images:
    im = im[..., 0] if im.shape[-1] == 1 else im
    f = Image.fromarray(im)
    if scale > 1:
      f = f.resize((f.width * scale, f.height * scale), Image.NEAREST)
    frames.append(f)
  # Forward then back, so the loop is smooth.
  frames = frames + frames[-2:0:-1]
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
  return path


def explore(gan: GAN, state: TrainState, workdir: str, *, seed: int = 0, pairs: int = 4,
            steps: int = 10, label: Optional[int] = None) -> Dict[str, str]:
  """Writes interpolation strips (PNG, one row per pair of latents) and GIFs, linear and
  spherical, and for a conditional model a class grid; returns {name: path}."""
  key = rng.stream(rng.root_key(seed), "latent")
  z = gan.sample_latents(key, 2 * pairs)
  scale = max(1, 112 // gan.image_shape[0])
  out = {}
  for method in ("linear", "spherical"):
    rows = [interpolate(gan, state, z[2 * i], z[2 * i + 1], steps, method, label)
            for i in range(pairs)]
    out[f"interp_{method}_png"] = save_png(
        grid(np.concatenate(rows), ncol=steps), os.path.join(workdir, f"interp_{method}.png"),
        scale=scale)
    out[f"interp_{method}_gif"] = save_gif(rows[0], os.path.join(workdir, f"interp_{method}.gif"),
                                           scale=scale)
  if gan.num_classes > 0:
    zs, labels = sampling.grid_inputs(gan, 8 * gan.num_classes, rng.stream(key, "grid"))
    imgs = to_uint8(sampling.generator_fn(gan)(sampling_params(state), state.g.stats, zs,
                                               labels))
    out["class_grid_png"] = save_png(grid(imgs, ncol=gan.num_classes),
                                     os.path.join(workdir, "class_grid.png"), scale=scale)
  return out
