"""DINOv2's ViT (Oquab et al. 2023, "DINOv2: Learning Robust Visual Features without
Supervision"), frozen and forward only: the encoder whose features GAT's discriminator is
aligned to (the REPA term, jaxgan/core/regularizers/repa.py).

The facts are read from facebookresearch/dinov2 (dinov2/models/vision_transformer.py,
layers/block.py, attention.py, layer_scale.py, mlp.py, patch_embed.py) and timm 1.0.31's
port (vision_transformer.py, layers/pos_embed.py); the code is ours:

  patch embedding  a p x p, stride-p convolution (p = 14) to width D, with bias
  tokens           [cls, registers (the *_reg models), patches]; the learned position
                   table is added to cls and patches (not to registers)
  block            x + ls1 * attn(LN(x)), then x + ls2 * mlp(LN(x)); LayerNorm eps 1e-6;
                   attention with a biased qkv Linear, softmax(q k^T / sqrt(64)) and an
                   output Linear (head size 64: D / 64 heads for S, B and L); MLP D -> 4D,
                   exact GELU, -> D; ls1, ls2 per-channel layer scales
  output           the final LayerNorm's cls token and patch tokens ("x_norm_clstoken",
                   "x_norm_patchtokens" of forward_features)

GAT (hse1032/GAT@21a2dd09, utils.py load_encoders and losses/Rp_PT_loss.py) loads the hub
model and resamples its position table (37 x 37, for 518 px) to 16 x 16 with timm's
`resample_abs_pos_embed` (bicubic, antialiased) once; its inputs are the raw images / 255,
normalised with ImageNet's mean and std and resized to 224 x 224 (PyTorch's bicubic).
`load` does the same resampling for `resolution` / p patches; `preprocess` the rest.

Weights are read from a local file, never downloaded: torch hub's `dinov2_vitb14_pretrain.pth`
(read without PyTorch, jaxgan/base/weights_file.py) or a safetensors file in the hub's / timm's
names or in Hugging Face transformers' (`facebook/dinov2-base`'s model.safetensors).
ViT-g's SwiGLU feed-forward is not supported (GAT uses ViT-B/14).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.base import weights_file
from jaxgan.base.errors import UserError, UserFileError
from jaxgan.ops import resize

EPS = 1e-6
HEAD_DIM = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PER_BLOCK = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
             "attn.proj.weight", "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias",
             "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma")
IGNORED = ("mask_token",)      # masked-image training only


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
  """A loaded DINOv2 ViT: its weights (hub names, jnp float32) and static shape facts."""
  params: Dict[str, jax.Array]
  width: int
  depth: int
  patch: int
  registers: int
  resolution: int      # input side; the position table is resampled for it

  @property
  def heads(self) -> int:
    return self.width // HEAD_DIM

  @property
  def grid(self) -> int:
    return self.resolution // self.patch


def _from_hf(t: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Hugging Face transformers' Dinov2Model names -> the hub's."""
  t = {k[len("dinov2."):] if k.startswith("dinov2.") else k: v for k, v in t.items()}
  out = {"cls_token": t.pop("embeddings.cls_token"),
         "pos_embed": t.pop("embeddings.position_embeddings"),
         "patch_embed.proj.weight": t.pop("embeddings.patch_embeddings.projection.weight"),
         "patch_embed.proj.bias": t.pop("embeddings.patch_embeddings.projection.bias"),
         "norm.weight": t.pop("layernorm.weight"), "norm.bias": t.pop("layernorm.bias")}
  if "embeddings.register_tokens" in t:
    out["register_tokens"] = t.pop("embeddings.register_tokens")
  t.pop("embeddings.mask_token", None)
  i = 0
  while f"encoder.layer.{i}.norm1.weight" in t:
    a, b = f"encoder.layer.{i}.", f"blocks.{i}."
    att = a + "attention.attention."
    for s in ("weight", "bias"):
      out[b + f"attn.qkv.{s}"] = np.concatenate([t.pop(att + f"{n}.{s}")
                                                 for n in ("query", "key", "value")])
      out[b + f"attn.proj.{s}"] = t.pop(a + f"attention.output.dense.{s}")
      for n in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
        out[b + f"{n}.{s}"] = t.pop(a + f"{n}.{s}")
    out[b + "ls1.gamma"] = t.pop(a + "layer_scale1.lambda1")
    out[b + "ls2.gamma"] = t.pop(a + "layer_scale2.lambda1")
    i += 1
  out.update(t)    # anything left is reported as unexpected
  return out


def _read(path: str) -> Dict[str, np.ndarray]:
  if not os.path.isfile(path):
    raise UserFileError(f"{path!r} (the REPA encoder): no such file; give DINOv2 ViT-B/14 "
                        "weights (torch hub's dinov2_vitb14_pretrain.pth or a safetensors file).")
  if path.endswith(".safetensors"):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    try:
      tensors = load_file(path)
    except Exception as e:  # the library's errors name no file
      raise UserError(f"{path}: not a readable safetensors file ({e}); download it "
                      "again.") from None
  else:
    tensors = weights_file.read_torch(path)
    if "model" in tensors and isinstance(tensors["model"], dict):   # a training checkpoint
      tensors = tensors["model"]
  tensors = {k: np.asarray(v, np.float32) for k, v in tensors.items()}
  if "embeddings.cls_token" in tensors or "dinov2.embeddings.cls_token" in tensors:
    tensors = _from_hf(tensors)
  if "reg_token" in tensors:     # timm's name
    tensors["register_tokens"] = tensors.pop("reg_token")
  return {k: v for k, v in tensors.items() if k not in IGNORED}


def _check(path: str, t: Dict[str, np.ndarray]) -> Tuple[int, int, int]:
  if "cls_token" not in t or "patch_embed.proj.weight" not in t:
    raise UserError(f"{path}: not DINOv2 ViT weights (no cls_token / patch_embed.proj.weight); "
                    "give torch hub's dinov2_vit*14_pretrain.pth or its safetensors.")
  if any(k.endswith("mlp.w12.weight") for k in t):
    raise UserError(f"{path}: a ViT-g (SwiGLU feed-forward), which jaxgan's DINOv2 does not "
                    "build; use ViT-S/B/L (GAT uses ViT-B/14).")
  width, _, patch, _ = t["patch_embed.proj.weight"].shape
  depth = 0
  while f"blocks.{depth}.norm1.weight" in t:
    depth += 1
  want = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
          "norm.weight", "norm.bias", *(f"blocks.{i}.{n}" for i in range(depth)
                                        for n in PER_BLOCK)}
  want |= {"register_tokens"} & set(t)
  missing, unexpected = sorted(want - set(t)), sorted(set(t) - want)
  if missing or unexpected or width % HEAD_DIM:
    raise UserError(f"{path}: not a DINOv2 ViT-S/B/L state dict (missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]}, width {width}); give the hub's weights file.")
  return width, depth, patch


def resample_positions(table: np.ndarray, grid: int) -> np.ndarray:
  """timm's resample_abs_pos_embed: the (1, 1 + g*g, D) table's patch part resized to
  grid x grid (bicubic, antialiased), its cls entry kept."""
  g = int(round((table.shape[1] - 1) ** 0.5))
  if g == grid:
    return table
  wh = resize.bicubic_matrix(g, grid, antialias=True)
  patches = table[0, 1:].reshape(g, g, -1).astype(np.float64)
  out = np.einsum("ih,hwc,jw->ijc", wh, patches, wh).reshape(1, grid * grid, -1)
  return np.concatenate([table[:, :1], out.astype(np.float32)], axis=1)


@functools.lru_cache(maxsize=4)
def load(path: str, resolution: int = 224) -> Encoder:
  """The encoder of a weights file, its position table resampled for `resolution` px
  inputs (once per file and resolution per process)."""
  t = _read(path)
  width, depth, patch = _check(path, t)
  if resolution % patch:
    raise UserError(f"REPA encoder resolution {resolution} is not a multiple of the encoder's "
                    f"patch size {patch}; use e.g. {16 * patch}.")
  t["pos_embed"] = resample_positions(t["pos_embed"], resolution // patch)
  reg = t["register_tokens"].shape[1] if "register_tokens" in t else 0
  return Encoder({k: jnp.asarray(v) for k, v in t.items()}, int(width), depth, int(patch),
                 int(reg), int(resolution))


def preprocess(images: jax.Array, enc: Encoder) -> jax.Array:
  """Images in [-1, 1] (NHWC, RGB or grey) -> the encoder's input: [0, 1], normalised with
  ImageNet's statistics, resized to resolution x resolution (PyTorch's bicubic)."""
  x = (images.astype(jnp.float32) + 1.0) / 2.0
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
  return resize.bicubic(x, enc.resolution, enc.resolution)


def _layer_norm(x, p, name):
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + EPS) * p[name + ".weight"] + p[name + ".bias"]


def _linear(x, p, name):
  return x @ p[name + ".weight"].T + p[name + ".bias"]


def _block(x, p, b, heads):
  n, t, d = x.shape
  qkv = _linear(_layer_norm(x, p, b + "norm1"), p, b + "attn.qkv")
  q, k, v = jnp.moveaxis(qkv.reshape(n, t, 3, heads, d // heads), 2, 0)
  att = jax.nn.softmax(jnp.einsum("nqhd,nkhd->nhqk", q, k) / np.sqrt(d // heads), axis=-1)
  y = jnp.einsum("nhqk,nkhd->nqhd", att, v).reshape(n, t, d)
  x = x + p[b + "ls1.gamma"] * _linear(y, p, b + "attn.proj")
  h = jax.nn.gelu(_linear(_layer_norm(x, p, b + "norm2"), p, b + "mlp.fc1"), approximate=False)
  return x + p[b + "ls2.gamma"] * _linear(h, p, b + "mlp.fc2")


def features(enc: Encoder, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """(normed cls token (N, D), normed patch tokens (N, grid, grid, D)) of preprocessed
  inputs (N, resolution, resolution, 3)."""
  p, s, g = enc.params, enc.patch, enc.grid
  n = x.shape[0]
  x = x.reshape(n, g, s, g, s, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, s * s * 3)
  w = p["patch_embed.proj.weight"].transpose(2, 3, 1, 0).reshape(s * s * 3, enc.width)
  tok = x @ w + p["patch_embed.proj.bias"]
  cls = jnp.broadcast_to(p["cls_token"], (n, 1, enc.width))
  h = jnp.concatenate([cls, tok], axis=1) + p["pos_embed"]
  if enc.registers:
    reg = jnp.broadcast_to(p["register_tokens"], (n, enc.registers, enc.width))
    h = jnp.concatenate([h[:, :1], reg, h[:, 1:]], axis=1)
  for i in range(enc.depth):
    h = _block(h, p, f"blocks.{i}.", enc.heads)
  h = _layer_norm(h, p, "norm")
  return h[:, 0], h[:, 1 + enc.registers:].reshape(n, g, g, enc.width)
