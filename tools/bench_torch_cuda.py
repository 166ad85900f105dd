"""The PyTorch peers of the pinned benchmark models on a CUDA GPU (for the README's GPU table).

    python tools/bench_torch_cuda.py --peers-dir DIR --model dcgan64 --peer eager|compile

The peers' harness (../shared/bench/peers/torch_peers.py) is written for the CPU: it builds
its networks, random batches and noise with the default device and a CPU generator. Here the
default device is CUDA and the harness's module source is loaded with its generator moved to
the GPU, so the peers' own code (models, losses, iteration structure, the eager critic for the
gradient-penalty pass under torch.compile) runs unchanged. Reading the final losses as floats
at the end of each timed repeat waits for the GPU, so the timings cover the queued work.

`celeba64` is not a pinned peer model: it is `wgan_gp64`'s networks at the shape of
configs/wgan_gp.py:celeba64 (64x64x3, batch 512, latent 128), added to the harness's model
table here so that benchmarks.bench --model celeba64 --calls has a PyTorch counterpart.

float32 matmuls use TF32 (`torch.set_float32_matmul_precision("high")`, and cuDNN's TF32
default for convolutions), as XLA does for float32 on this GPU by default; cuDNN autotuning
is on (`cudnn.benchmark`), as XLA autotunes its convolutions.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import sys
import types


def _load(path: str, name: str, patch=None):
  src = open(path).read()
  if patch:
    src = patch(src)
  mod = types.ModuleType(name)
  mod.__file__ = path
  sys.modules[name] = mod
  exec(compile(src, path, "exec"), mod.__dict__)  # pylint: disable=exec-used
  return mod


def _add_celeba64(common):
  """common.MODELS['celeba64']: wgan_gp64 with 3 channels, batch 512, latent 128."""
  spec = copy.deepcopy(common.MODELS["wgan_gp64"])
  spec.update(batch=512, latent=128, image=(64, 64, 3))

  def recolour(layers, first_in=None, last_out=None):
    layers = [list(l) if isinstance(l, tuple) else l for l in layers]
    convs = [i for i, l in enumerate(layers) if isinstance(l, list) and l[0] in ("conv", "convT")]
    if first_in is not None:
      layers[convs[0]][1] = first_in
    if last_out is not None:
      layers[convs[-1]][2] = last_out
    return [tuple(l) if isinstance(l, list) else l for l in layers]

  spec["G"] = recolour(spec["G"], first_in=128, last_out=3)
  spec["G"][0] = ("reshape", (1, 1, 128))
  spec["D"] = recolour(spec["D"], first_in=3)
  common.MODELS["celeba64"] = spec


def _build_celeba64(torch_peers):
  nn = torch_peers.nn
  g, d = torch_peers.build("wgan_gp64")

  def swap(seq, index, **kw):
    old = seq[index]
    cls = type(old)
    args = dict(in_channels=old.in_channels, out_channels=old.out_channels,
                kernel_size=old.kernel_size, stride=old.stride, padding=old.padding,
                bias=old.bias is not None)
    args.update(kw)
    seq[index] = cls(**args)

  g[0] = nn.Unflatten(1, (128, 1, 1))
  swap(g, 1, in_channels=128)
  swap(g, len(g) - 2, out_channels=3)
  swap(d, 0, in_channels=3)
  return g, d


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--peers-dir", required=True)
  ap.add_argument("--model", required=True)
  ap.add_argument("--peer", default="eager", choices=("eager", "compile"))
  ap.add_argument("--seconds", type=float, default=1.0)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--warmup-seconds", type=float, default=3.0)
  ap.add_argument("--device", default="cuda", help="cpu: check this script without a GPU")
  args = ap.parse_args(argv)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_default_device(args.device)
  torch.set_float32_matmul_precision("high")
  torch.backends.cudnn.benchmark = True
  peers = os.path.abspath(args.peers_dir)
  sys.path.insert(0, peers)
  common = _load(os.path.join(peers, "common.py"), "common")
  _add_celeba64(common)
  tp = _load(os.path.join(peers, "torch_peers.py"), "torch_peers",
             lambda s: s.replace("torch.Generator()", f"torch.Generator(device={args.device!r})"))
  if args.model == "celeba64":
    build = tp.build
    tp.build = lambda name: _build_celeba64(tp) if name == "celeba64" else build(name)
  name = f"torch_{args.peer}_{args.device}"
  if (args.peer, args.model) in tp.UNSUPPORTED:
    print(json.dumps({"peer": name, "model": args.model,
                      "error": tp.UNSUPPORTED[(args.peer, args.model)][:300]}))
    return 2
  step, sync, last = tp.make_step(args.model, args.peer)
  res = common.bench(step, sync, seconds=args.seconds, repeats=args.repeats, warmup_iters=3,
                     warmup_s=args.warmup_seconds, log=common.stderr_log)
  rec = common.make_record(name, "pytorch", {"torch": torch.__version__,
                                             "device": (torch.cuda.get_device_name()
                                                        if args.device == "cuda" else "cpu")},
                           args.model, res, {"final_losses": last["vals"],
                                             "losses_finite": bool(np.all(np.isfinite(
                                                 last["vals"])))})
  print(json.dumps(rec), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
