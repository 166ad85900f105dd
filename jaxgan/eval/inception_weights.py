"""The FID Inception's weights from a local file: checked, converted once, cached.

Offline clusters cannot download weights, so jaxgan never does: `config.eval.inception_weights`
names a file the researcher already has, in either published form:

- pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a PyTorch state dict; its name
  carries the first 8 hex digits of its sha256, which torch.hub checks and so do we);
- the JAX ports' `inception_v3_weights_fid.pickle` (jax-fid, fidjax: nested dicts
  `{block: {conv: {kernel}, bn: {scale, bias, mean, var}}, fc: {kernel, bias}}` holding
  the same network in Flax layout). Its publishers give no hash; we record its sha256.

Both are read by the allow-list unpickler of jaxgan/base/weights_file.py (no PyTorch, no
code from the file runs). The converted arrays are cached as
`<eval.cache_dir>/inception/<sha256>.npz`, so later runs skip the conversion.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np
from flax import nnx

from jaxgan.base.errors import UserError, UserFileError
from jaxgan.base import weights_file
from jaxgan.eval import inception

PUBLISHED_FILE = "pt_inception-2015-12-05-6726825d.pth"
PUBLISHED_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 + PUBLISHED_FILE)
PUBLISHED_SHA256_PREFIX = "6726825d"
PICKLE_FILE = "inception_v3_weights_fid.pickle"
# torch.save's legacy format starts with the pickle of its magic number (protocol 2).
_LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# pytorch-fid leaf names -> ours (conv kernels and the fc matrix are transposed as well).
_TORCH_LEAVES = {"conv.weight": "conv/kernel", "bn.weight": "bn/scale", "bn.bias": "bn/bias",
                 "bn.running_mean": "bn/mean", "bn.running_var": "bn/var",
                 "fc.weight": "fc/kernel", "fc.bias": "fc/bias"}


def missing_file_message(path: str) -> str:
  return (f"config.eval.inception_weights={path!r}: no such file. Inception metrics need "
          f"pytorch-fid's {PUBLISHED_FILE} (sha256 {PUBLISHED_SHA256_PREFIX}..., published at "
          f"{PUBLISHED_URL}) or the JAX ports' {PICKLE_FILE}; download one where you have a "
          "connection and pass --config.eval.inception_weights=PATH (nothing is downloaded "
          "for you).")


sha256 = weights_file.file_sha256   # the identity a run records of its weights file


def file_format(path: str) -> str:
  """'torch' (zip or legacy torch.save) or 'pickle', from the file's first bytes."""
  with open(path, "rb") as f:
    head = f.read(len(_LEGACY_TORCH_HEAD))
  return "torch" if head[:4] == b"PK\x03\x04" or head == _LEGACY_TORCH_HEAD else "pickle"


def from_torch(state_dict: Dict[str, np.ndarray], source: str) -> Dict[str, np.ndarray]:
  """pytorch-fid's state dict -> {"Mixed_5b/branch1x1/conv/kernel": HWIO array, ...}."""
  flat = {}
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked"):
      continue  # a training counter, not a weight
    parts = key.split(".")
    module, leaf = (parts[:-2], ".".join(parts[-2:])) if parts[0] != "fc" else ([], key)
    if leaf not in _TORCH_LEAVES:
      raise UserError(f"{source}: unexpected tensor {key!r}; not pytorch-fid's FID "
                      "InceptionV3 state dict.")
    name = "/".join(module + [_TORCH_LEAVES[leaf]])
    value = np.asarray(value, np.float32)
    if leaf == "conv.weight":
      value = value.transpose(2, 3, 1, 0)   # OIHW -> HWIO
    elif key == "fc.weight":
      value = value.T                       # [out, in] -> [in, out]
    flat[name] = value
  return flat


def from_pickle(tree, source: str, prefix: str = "") -> Dict[str, np.ndarray]:
  """The JAX ports' nested dict -> the same flat names (already in Flax layout)."""
  if not isinstance(tree, dict):
    raise UserError(f"{source}: expected nested dicts of arrays, found "
                    f"{type(tree).__name__} at {prefix or 'the top'}.")
  flat = {}
  for k, v in tree.items():
    name = f"{prefix}/{k}" if prefix else str(k)
    if isinstance(v, dict):
      flat.update(from_pickle(v, source, name))
    else:
      flat[name] = np.asarray(v, np.float32)
  return flat


def load_into_model(flat: Dict[str, np.ndarray], source: str):
  """(graphdef, state) of the FID InceptionV3 holding `flat`; every variable must be there
  with its shape, and nothing else."""
  model = inception.abstract_model()
  variables = dict(inception.variables(model))
  missing = sorted(set(variables) - set(flat))
  extra = sorted(set(flat) - set(variables))
  if missing or extra:
    raise UserError(f"{source}: not the FID InceptionV3 ({len(missing)} weights missing, e.g. "
                    f"{missing[:2]}; {len(extra)} unexpected, e.g. {extra[:2]}).")
  for name, var in variables.items():
    want = tuple(var.get_value().shape)
    if flat[name].shape != want:
      raise UserError(f"{source}: {name} has shape {flat[name].shape}, the FID InceptionV3 "
                      f"needs {want}.")
    var.set_value(np.asarray(flat[name], np.float32))
  return nnx.split(model)


def read_flat(path: str) -> Tuple[Dict[str, np.ndarray], str]:
  """The file's weights under our names, and its format."""
  kind = file_format(path)
  if kind == "torch":
    return from_torch(weights_file.read_torch(path), path), kind
  return from_pickle(weights_file.read_pickle(path), path), kind


def check_hash(path: str, digest: str, expected: str, kind: str) -> str:
  """How the file was checked ("published", "pinned", "no published hash", "other
  weights"); refuses a file whose sha256 does not start as required.

  expected: "published" (a .pth must start with 6726825d, as its name says; the pickle has
  no published hash), "any" (other weights on purpose, e.g. a parity test: the numbers are
  then not comparable to papers), or a hex prefix the sha256 must start with."""
  if expected == "any":
    return "published" if digest.startswith(PUBLISHED_SHA256_PREFIX) else "other weights"
  if expected == "published" and kind != "torch":
    return "no published hash"
  prefix = PUBLISHED_SHA256_PREFIX if expected == "published" else expected.lower()
  if not digest.startswith(prefix):
    raise UserError(
        f"config.eval.inception_weights={path!r}: sha256 {digest[:16]}... does not start "
        f"with {prefix!r}, so it is not the expected file ({PUBLISHED_FILE}). Download it "
        "again, or set --config.eval.inception_sha256=any to use other weights on purpose.")
  return "published" if expected == "published" else "pinned"


def load(path: str, cache_dir: str, expected: str = "published"):
  """(graphdef, state, info) for the weights file at `path`; info records its sha256,
  format and whether it is the published network."""
  path = os.path.expanduser(path)
  if not path or not os.path.isfile(path):
    raise UserFileError(missing_file_message(path))
  digest = sha256(path)
  kind = file_format(path)
  checked = check_hash(path, digest, expected, kind)
  cache = os.path.join(os.path.expanduser(cache_dir), "inception", f"{digest}.npz")
  if os.path.exists(cache):
    with np.load(cache) as z:
      flat = {k: z[k] for k in z.files}
  else:
    flat, _ = read_flat(path)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = cache + ".tmp.npz"
    np.savez(tmp, **flat)
    os.replace(tmp, cache)
  graphdef, state = load_into_model(flat, path)
  info = {"weights": os.path.abspath(path), "weights_sha256": digest, "weights_format": kind,
          "weights_check": checked}
  return graphdef, state, info
