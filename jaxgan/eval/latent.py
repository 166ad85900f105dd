"""Walking a trained generator's latent spaces (`--mode latent`).

Z, every generator: interpolations, linear and spherical (PNG strip, animated GIF), and a
class grid for conditional models. W, a style-based generator (StyleGAN2,
jaxgan/core/models/stylegan2.py): the truncation trick's strip (psi from 0, every image
w_avg, to 1, untruncated; Karras et al. 2019 fig. 8), a style-mixing grid (Karras et al.
2019 fig. 3: each row's image with the coarse styles, ws[:cutoff], of each column's
source) and interpolation in W."""
from __future__ import annotations

import functools
import os
from typing import Dict, Optional

import jax
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
  """Writes the Z pictures, and for a style-based G the W ones too; returns {name: path}."""
  out = explore_z(gan, state, workdir, seed=seed, pairs=pairs, steps=steps, label=label)
  if gan.style_based:
    out.update(explore_w(gan, state, workdir, seed=seed, pairs=pairs, steps=steps, label=label))
  return out


def explore_z(gan: GAN, state: TrainState, workdir: str, *, seed: int = 0, pairs: int = 4,
              steps: int = 10, label: Optional[int] = None) -> Dict[str, str]:
  """Writes interpolation strips (PNG, one row per pair of latents) and GIFs, linear and
  spherical, and for a conditional model a class grid; returns {name: path}."""
  key = rng.stream(rng.root_key(seed), "latent")
  z = gan.sample_latents(key, 2 * pairs)
  scale = max(1, 112 // _image_size(gan))
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


# --- W: a style-based generator ---

_CACHE: Dict[int, tuple] = {}


def _image_size(gan: GAN) -> int:
  """Pixels on the long side of the images G's outputs become (a latent GAN's: decoded)."""
  return max((gan.latent.image_shape if gan.latent is not None else gan.image_shape)[:2])


def fns(gan: GAN):
  """jit-compiled (map: z -> ws at psi, synthesize: ws -> images) of `gan`'s G."""
  if id(gan) in _CACHE:
    return _CACHE[id(gan)][1]

  @functools.partial(jax.jit, static_argnums=4)
  def map_ws(params, stats, z, labels, psi):
    return gan.apply_g(params, stats, lambda g: g.map(z, labels, truncation=psi))

  @jax.jit
  def synth(params, stats, ws, ae_state=None):
    x = gan.apply_g(params, stats, lambda g: g.synthesize(ws))
    if gan.latent is None:
      return x
    from flax import nnx  # pylint: disable=g-import-not-at-top
    return nnx.merge(graphdef, ae_state).decode(gan.latent.denormalize(x))

  graphdef, ae_state = (gan.latent.decoder_parts() if gan.latent is not None
                        else (None, None))
  synthesize = lambda params, stats, ws: synth(params, stats, ws, ae_state)
  _CACHE[id(gan)] = (gan, (map_ws, synthesize))   # the GAN is kept, so its id stays its own
  return map_ws, synthesize


def _labels(gan: GAN, n: int, label: Optional[int]):
  return jnp.full((n,), label or 0, jnp.int32) if gan.num_classes > 0 else None


def truncation_strip(gan: GAN, state: TrainState, z, steps: int = 9,
                     label: Optional[int] = None) -> np.ndarray:
  """uint8 [rows * steps, H, W, C]: each z's image at psi = 0 .. 1 (a row per z)."""
  map_ws, synthesize = fns(gan)
  params, stats = sampling_params(state), state.g.stats
  labels = _labels(gan, z.shape[0], label)
  cols = [map_ws(params, stats, z, labels, float(p)) for p in np.linspace(0.0, 1.0, steps)]
  ws = jnp.stack(cols, axis=1).reshape(-1, *cols[0].shape[1:])     # row-major
  return to_uint8(synthesize(params, stats, ws))


def mixing_grid(gan: GAN, state: TrainState, z_rows, z_cols, cutoff: int,
                label: Optional[int] = None) -> np.ndarray:
  """uint8 [(R + 1) * (C + 1), ...]: a blank corner, the C column sources on top, then per
  row its own image and its mixes: ws[:cutoff] of the column's source, the rest its own."""
  map_ws, synthesize = fns(gan)
  params, stats = sampling_params(state), state.g.stats
  wr = map_ws(params, stats, z_rows, _labels(gan, z_rows.shape[0], label), 1.0)
  wc = map_ws(params, stats, z_cols, _labels(gan, z_cols.shape[0], label), 1.0)
  coarse = (jnp.arange(wr.shape[1]) < cutoff)[None, None, :, None]
  mixed = jnp.where(coarse, wc[None], wr[:, None]).reshape(-1, *wr.shape[1:])
  rows, cols = (to_uint8(synthesize(params, stats, w)) for w in (wr, wc))
  cells = to_uint8(synthesize(params, stats, mixed)).reshape(len(rows), len(cols),
                                                             *rows.shape[1:])
  top = np.concatenate([np.zeros_like(rows[:1]), cols])
  body = [np.concatenate([rows[i:i + 1], cells[i]]) for i in range(len(rows))]
  return np.concatenate([top] + body)


def interpolate_w(gan: GAN, state: TrainState, z0, z1, steps: int,
                  label: Optional[int] = None) -> np.ndarray:
  """uint8 images along the straight line from w(z0) to w(z1) in W, endpoints included."""
  map_ws, synthesize = fns(gan)
  params, stats = sampling_params(state), state.g.stats
  ws = map_ws(params, stats, jnp.stack([z0, z1]), _labels(gan, 2, label), 1.0)
  t = jnp.linspace(0.0, 1.0, steps)[:, None, None]
  return to_uint8(synthesize(params, stats, (1.0 - t) * ws[0] + t * ws[1]))


def explore_w(gan: GAN, state: TrainState, workdir: str, *, seed: int = 0, pairs: int = 4,
              steps: int = 10, label: Optional[int] = None) -> Dict[str, str]:
  """Writes truncation.png, style_mixing.png and interp_w.png (+ .gif); {name: path}."""
  key = rng.stream(rng.root_key(seed), "style_latent")   # the stream's name as before the merge
  k_t, k_r, k_c, k_i = jax.random.split(key, 4)
  scale = max(1, 112 // _image_size(gan))
  out = {}
  strip = truncation_strip(gan, state, gan.sample_latents(k_t, 6), 9, label)
  out["truncation_png"] = save_png(grid(strip, ncol=9), os.path.join(workdir, "truncation.png"),
                                   scale=scale)
  num_ws = fns(gan)[0](sampling_params(state), state.g.stats, gan.sample_latents(k_r, 1),
                        _labels(gan, 1, label), 1.0).shape[1]
  mix = mixing_grid(gan, state, gan.sample_latents(k_r, 5), gan.sample_latents(k_c, 6),
                    max(1, num_ws // 2), label)
  out["style_mixing_png"] = save_png(grid(mix, ncol=7), os.path.join(workdir, "style_mixing.png"),
                                     scale=scale)
  z = gan.sample_latents(k_i, 2 * pairs)
  rows = [interpolate_w(gan, state, z[2 * i], z[2 * i + 1], steps, label) for i in range(pairs)]
  out["interp_w_png"] = save_png(grid(np.concatenate(rows), ncol=steps),
                                 os.path.join(workdir, "interp_w.png"), scale=scale)
  out["interp_w_gif"] = save_gif(rows[0], os.path.join(workdir, "interp_w.gif"),
                                        scale=scale)
  return out
