"""What GAT's presets cost: parameters and forward FLOPs per sample of G and of D, and the
FLOPs of one training iteration per sample, from XLA's cost analysis of the lowered
programs (nothing is allocated or run: the parameters are jax.eval_shape'd).

  python -m benchmarks.gat_costs [--presets s2,b2,l2,xl2] [--latent 32]

One iteration (configs/gat.py's recipe) = a D update (G forward without gradient; D
forwards on generated and real inputs and on each finite-difference R1/R2 perturbation, so
4 D forwards, and their backward) and a G update (G forward and backward through D on
generated and real inputs). The per-iteration count is taken from the one-step program
with XLA's pre-optimisation analysis (benchmarks/bench_flops.py explains the choice).
"""
from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks.bench_flops import program_flops
from configs import gat as gat_cfg
from jaxgan.core import models, state as state_lib, train_step
from jaxgan.pretrained import dinov2


def _forward_flops(net, *inputs):
  graph, params, rest = nnx.split(net, nnx.Param, ...)

  def run(p, *x):
    out = nnx.merge(graph, p, rest, copy=True)(*x, train=False)
    return out[0] if isinstance(out, tuple) else out     # D: (logits, None)
  return program_flops(run, params, *inputs)["flops_lowered"]


def costs(preset: str, latent: int = 32, batch: int = 2):
  c = gat_cfg.get_config(preset)
  shape = (latent, latent, 4)
  n_g, n_d = models.param_counts(c.model, shape, 1000)

  def nets():
    return models.build(c.model, shape, 1000, 0)
  g, d = nnx.eval_shape(nets)
  z = jax.ShapeDtypeStruct((batch, c.model.latent_dim), jnp.float32)
  y = jax.ShapeDtypeStruct((batch,), jnp.int32)
  x = jax.ShapeDtypeStruct((batch, *shape), jnp.float32)
  g_flops = _forward_flops(g, z, y) / batch
  d_flops = _forward_flops(d, x, y) / batch
  c.data.batch_size = batch
  made = {}

  def create():
    made["gan"], st = state_lib.create(c, shape, 1000)
    return st
  state = jax.eval_shape(create)
  gan = made["gan"]
  step = functools.partial(train_step.make_train_step(gan, c), pattern=None)
  images = jax.ShapeDtypeStruct((1, batch, *shape), jnp.float32)
  labels = jax.ShapeDtypeStruct((1, batch), jnp.int32)
  it = program_flops(step, state, {"images": images, "labels": labels})["flops_lowered"]
  return {"preset": preset, "g_params": n_g, "d_params": n_d, "g_gflops": g_flops / 1e9,
          "d_gflops": d_flops / 1e9, "iteration_gflops": it / batch / 1e9}


def repa_encoder_gflops(width: int = 768, depth: int = 12, resolution: int = 224) -> float:
  """Forward GFLOP per image of the REPA encoder (DINOv2 ViT-B/14 at 224 px: 256 patches)
  on abstract weights of the hub's shapes."""
  p, g = 14, resolution // 14
  shapes = {"cls_token": (1, 1, width), "pos_embed": (1, 1 + g * g, width),
            "patch_embed.proj.weight": (width, 3, p, p), "patch_embed.proj.bias": (width,),
            "norm.weight": (width,), "norm.bias": (width,)}
  per = {"norm1.weight": (width,), "norm1.bias": (width,), "attn.qkv.weight": (3 * width, width),
         "attn.qkv.bias": (3 * width,), "attn.proj.weight": (width, width),
         "attn.proj.bias": (width,), "ls1.gamma": (width,), "norm2.weight": (width,),
         "norm2.bias": (width,), "mlp.fc1.weight": (4 * width, width),
         "mlp.fc1.bias": (4 * width,), "mlp.fc2.weight": (width, 4 * width),
         "mlp.fc2.bias": (width,), "ls2.gamma": (width,)}
  shapes.update({f"blocks.{i}.{k}": v for i in range(depth) for k, v in per.items()})
  params = {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in shapes.items()}
  run = lambda prm, x: dinov2.features(dinov2.Encoder(prm, width, depth, p, 0, resolution), x)
  x = jax.ShapeDtypeStruct((1, resolution, resolution, 3), jnp.float32)
  return program_flops(run, params, x)["flops_lowered"] / 1e9


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--presets", default="s2,b2,l2,xl2")
  p.add_argument("--latent", type=int, default=32, help="latent side (ImageNet-256: 32)")
  args = p.parse_args()
  print("| preset | G params | D params | G fwd GFLOP/sample | D fwd GFLOP/sample | "
        "iteration GFLOP/sample |")
  print("|---|---:|---:|---:|---:|---:|")
  for preset in args.presets.split(","):
    r = costs(preset.strip(), args.latent)
    print(f"| {r['preset']} | {r['g_params']:,} | {r['d_params']:,} | {r['g_gflops']:.1f} | "
          f"{r['d_gflops']:.1f} | {r['iteration_gflops']:.1f} |", flush=True)
  print(f"REPA encoder (DINOv2 ViT-B/14, 224 px), forward per real image: "
        f"{repa_encoder_gflops():.1f} GFLOP (not in the iteration figures: off without "
        "its file)")


if __name__ == "__main__":
  main()
