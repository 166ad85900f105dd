"""diffusers' AutoencoderKL directories, read and written without torch or diffusers.

A directory as `save_pretrained` writes it and as the hub serves it (stabilityai/
sd-vae-ft-mse, the `vae/` folder of FLUX.1 and FLUX.2): `config.json` and
`diffusion_pytorch_model.safetensors` (read with the safetensors library), or the older
`diffusion_pytorch_model.bin` (a torch.save pickle, read by jaxgan's allow-list unpickler,
jaxgan/base/weights_file.py: no code from the file runs). Tensors are PyTorch's (convs
OIHW, linears (out, in)) and become ours (HWIO, (in, out)), in float32 whatever they were
stored in (FLUX's are bfloat16). Attention weights under the names diffusers used before
0.15 (`query`, `key`, `value`, `proj_attn`, which sd-vae-ft-mse's files still carry) are
renamed as diffusers renames them on load.

`load(dir)` -> (model, sha256 of the weights file); `save(model, dir)` writes the same
format (diffusers' `AutoencoderKL.from_pretrained` reads it), so an autoencoder trained
here is loaded like a downloaded one. Every mismatch is a one-line UserError naming the
file and what differs.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, Tuple

import jax
import numpy as np
from flax import nnx

from jaxgan.base import weights_file
from jaxgan.base.errors import UserError, UserFileError
from jaxgan.pretrained import autoencoder_kl as ae

CONFIG = "config.json"
SAFETENSORS = "diffusion_pytorch_model.safetensors"
BIN = "diffusion_pytorch_model.bin"
CLASSES = ("AutoencoderKL", "AutoencoderKLFlux2")
OLD_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
IGNORED = ("bn.num_batches_tracked",)   # FLUX.2's BatchNorm counter: not needed here
DIFFUSERS_VERSION = "0.42.1"            # the version whose layout this follows


def _need(cond: bool, path: str, msg: str) -> None:
  if not cond:
    raise UserError(f"{path}: {msg}")


def read_config(directory: str) -> ae.AEConfig:
  """The network's shape from DIR/config.json (fields diffusers writes; others ignored)."""
  path = os.path.join(directory, CONFIG)
  if not os.path.isdir(directory):
    raise UserFileError(f"{directory}: no such directory; give a diffusers AutoencoderKL "
                        f"directory ({CONFIG} and {SAFETENSORS}).")
  try:
    with open(path) as f:
      raw = json.load(f)
  except FileNotFoundError:
    raise UserFileError(f"{path}: missing; a diffusers AutoencoderKL directory holds "
                        f"{CONFIG} beside {SAFETENSORS}.") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: not readable JSON ({e}); write it again.") from None
  cls = raw.get("_class_name", "AutoencoderKL")
  _need(cls in CLASSES, path, f"_class_name {cls!r} is not one jaxgan reads ({', '.join(CLASSES)}).")
  for key, want in (("down_block_types", "DownEncoderBlock2D"),
                    ("up_block_types", "UpDecoderBlock2D")):
    got = set(raw.get(key, [want]))
    _need(got <= {want}, path, f"{key} {sorted(got)}: only {want!r} blocks are supported.")
  act = raw.get("act_fn", "silu")
  _need(act in ("silu", "swish"), path, f"act_fn {act!r}: only 'silu' is supported.")
  _need(raw.get("norm_type", "group") == "group", path, "norm_type must be 'group'.")
  blocks = tuple(int(c) for c in raw.get("block_out_channels", (64,)))
  down = raw.get("down_block_types")
  _need(down is None or len(down) == len(blocks), path,
        f"{len(down or ())} down_block_types for {len(blocks)} block_out_channels.")
  dec = raw.get("decoder_block_out_channels")
  kw = dict(
      in_channels=int(raw.get("in_channels", 3)), out_channels=int(raw.get("out_channels", 3)),
      block_out_channels=blocks,
      decoder_block_out_channels=tuple(int(c) for c in dec) if dec else None,
      layers_per_block=int(raw.get("layers_per_block", 1)),
      latent_channels=int(raw.get("latent_channels", 4)),
      norm_num_groups=int(raw.get("norm_num_groups", 32)),
      use_quant_conv=bool(raw.get("use_quant_conv", True)),
      use_post_quant_conv=bool(raw.get("use_post_quant_conv", True)),
      mid_block_add_attention=bool(raw.get("mid_block_add_attention", True)),
      # AutoencoderKL's class default; FLUX.2's class has none (it normalises with `bn`)
      scaling_factor=(float(raw["scaling_factor"]) if raw.get("scaling_factor") is not None
                      else (None if cls == "AutoencoderKLFlux2" else 0.18215)),
      shift_factor=None if raw.get("shift_factor") is None else float(raw["shift_factor"]),
      class_name=cls, patch_size=tuple(raw.get("patch_size", (2, 2))),
      batch_norm_eps=float(raw.get("batch_norm_eps", 1e-4)))
  for c in set(blocks + (kw["decoder_block_out_channels"] or ())):
    _need(c % kw["norm_num_groups"] == 0, path,
          f"block width {c} does not split into norm_num_groups={kw['norm_num_groups']}.")
  return ae.AEConfig(**kw)


def config_json(cfg: ae.AEConfig) -> Dict:
  """config.json for `cfg`, as diffusers' save_pretrained writes it."""
  n = len(cfg.block_out_channels)
  out = {"_class_name": cfg.class_name, "_diffusers_version": DIFFUSERS_VERSION,
         "act_fn": "silu", "block_out_channels": list(cfg.block_out_channels),
         "down_block_types": ["DownEncoderBlock2D"] * n,
         "up_block_types": ["UpDecoderBlock2D"] * len(cfg.decoder_channels),
         "in_channels": cfg.in_channels, "out_channels": cfg.out_channels,
         "latent_channels": cfg.latent_channels, "layers_per_block": cfg.layers_per_block,
         "norm_num_groups": cfg.norm_num_groups, "use_quant_conv": cfg.use_quant_conv,
         "use_post_quant_conv": cfg.use_post_quant_conv,
         "mid_block_add_attention": cfg.mid_block_add_attention}
  if cfg.class_name == "AutoencoderKLFlux2":
    out.update(patch_size=list(cfg.patch_size), batch_norm_eps=cfg.batch_norm_eps,
               decoder_block_out_channels=list(cfg.decoder_channels))
  else:
    out.update(scaling_factor=cfg.scaling_factor, shift_factor=cfg.shift_factor,
               force_upcast=True)
  return out


def _key(path) -> str:
  """Our nnx path -> diffusers' state-dict key."""
  *head, last = [str(p) for p in path]
  last = {"kernel": "weight", "scale": "weight"}.get(last, last)
  return ".".join(head + [last])


def _to_torch(a: np.ndarray) -> np.ndarray:
  return a.transpose(3, 2, 0, 1) if a.ndim == 4 else (a.T if a.ndim == 2 else a)


def _from_torch(a: np.ndarray, ndim: int) -> np.ndarray:
  if ndim == 2 and a.ndim == 4:      # attention projections saved as 1x1 convs
    a = a[:, :, 0, 0]
  return a.transpose(2, 3, 1, 0) if ndim == 4 else (a.T if ndim == 2 else a)


def _read_tensors(directory: str) -> Tuple[str, Dict[str, np.ndarray]]:
  st, binp = os.path.join(directory, SAFETENSORS), os.path.join(directory, BIN)
  if os.path.exists(st):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    try:
      return st, load_file(st)
    except Exception as e:  # the library's errors name no file
      raise UserError(f"{st}: not a readable safetensors file ({e}); download it again.") from None
  if os.path.exists(binp):
    return binp, weights_file.read_torch(binp)
  raise UserFileError(f"{directory}: neither {SAFETENSORS} nor {BIN} is there; put the "
                      "autoencoder's weights beside its config.json.")


def _renamed(tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  out = {}
  for k, v in tensors.items():
    if k in IGNORED:
      continue
    parts = k.split(".")
    if "attentions" in parts and len(parts) >= 2 and parts[-2] in OLD_NAMES:
      parts = parts[:-2] + OLD_NAMES[parts[-2]].split(".") + parts[-1:]
    out[".".join(parts)] = np.asarray(v, np.float32)
  return out


def _mismatch(path: str, missing, unexpected) -> str:
  show = lambda ks: (", ".join(sorted(ks)[:3]) + (f" (+{len(ks) - 3} more)" if len(ks) > 3 else ""))
  parts = ([f"missing {show(missing)}"] if missing else []) + (
      [f"unexpected {show(unexpected)}"] if unexpected else [])
  return (f"{path} does not match the network its config.json describes: "
          f"{'; '.join(parts)}. Use the config.json that came with these weights.")


def load(directory: str) -> Tuple[ae.AutoencoderKL, str]:
  """The autoencoder of a diffusers directory, and the sha256 of its weights file."""
  cfg = read_config(directory)
  path, tensors = _read_tensors(directory)
  tensors = _renamed(tensors)
  model = ae.abstract(cfg)
  graphdef, state = nnx.split(model)
  flat = nnx.to_flat_state(state)
  keys = {_key(p): (p, v) for p, v in flat}
  missing, unexpected = set(keys) - set(tensors), set(tensors) - set(keys)
  if missing or unexpected:
    raise UserError(_mismatch(path, missing, unexpected))
  leaves = []
  for k, (p, v) in keys.items():
    a = tensors[k]
    want = tuple(v.get_value().shape)
    got = _from_torch(a, len(want))
    if got.shape != want:
      raise UserError(f"{path}: tensor {k!r} has shape {tuple(a.shape)}, but config.json's "
                      f"network needs {tuple(_to_torch(np.zeros(want)).shape)}; use the "
                      "config.json that came with these weights.")
    leaves.append((p, v.replace(jax.numpy.asarray(got))))
  return nnx.merge(graphdef, nnx.from_flat_state(leaves)), weights_file.file_sha256(path)


def state_dict(model: ae.AutoencoderKL) -> Dict[str, np.ndarray]:
  """diffusers' state dict of `model` (float32, PyTorch layouts)."""
  flat = nnx.to_flat_state(nnx.state(model))
  out = {_key(p): np.ascontiguousarray(_to_torch(np.asarray(v.get_value(), np.float32)))
         for p, v in flat}
  if model.cfg.class_name == "AutoencoderKLFlux2":
    out["bn.num_batches_tracked"] = np.zeros((), np.int64)
  return out


def save(model: ae.AutoencoderKL, directory: str) -> str:
  """Writes config.json and the safetensors weights into DIR (each file atomically);
  returns the weights' sha256."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  def write_config(p):
    with open(p, "w") as f:
      json.dump(config_json(model.cfg), f, indent=2)

  files = ((SAFETENSORS, lambda p: save_file(state_dict(model), p)), (CONFIG, write_config))
  for name, write in files:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    os.close(fd)
    try:
      write(tmp)
      os.replace(tmp, os.path.join(directory, name))
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  return weights_file.file_sha256(os.path.join(directory, SAFETENSORS))
