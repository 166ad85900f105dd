"""FLOPs of one training iteration, from XLA's own cost analysis, and the share of the
device's peak that a measured time reaches (`python -m benchmarks.bench --calls`).

What is counted: `jax.jit(step).lower(...).compile().cost_analysis()["flops"]` of the
model's one-step program (n_critic D updates + one G update): XLA's HloCostAnalysis after
optimisation, 2 FLOPs per multiply-add of every dot and convolution plus one per
elementwise arithmetic op (transcendentals are counted apart, not here). Three things in
that analysis would make a naive count wrong, and are handled here:

- Loops: XLA costs a while loop's body once, not once per trip (checked: a `lax.scan` of
  K matmuls reports the FLOPs of one; tests/test_bench_flops.py). A K-steps-per-call
  program under `call_loop=scan` would so report one step's FLOPs for K steps. Hence the
  iteration is always costed from the ONE-step program, with the critic updates unrolled
  (`critic_loop=unroll`, the same arithmetic): FLOPs per iteration are a property of the
  step and dtype, the same for every K (an unrolled K-step program costs K times the one
  step, also checked in the test). Loops left in the program that carry floating-point
  values are counted in `flops_loops` (0 for the pinned models; jax.random's threefry
  rounds are integer-only loops, not counted).
- Conditionals (lazy regularizers without a static pattern): XLA costs the costliest
  branch, an upper bound for steps where the regularizer is off.
- Custom calls are opaque: on CPU the oneDNN convolutions (`train.cpu_conv=auto`,
  jaxgan/cpu/onednn.py) count zero. The program costed is therefore always lowered with
  `cpu_conv=xla` (XLA's own convolutions, never run here): the same convolutions, counted.
  On GPU XLA rewrites dots and convolutions into cuBLAS/cuDNN custom calls after
  optimisation; XLA's GPU analysis is meant to cost those, but some jax/XLA versions did
  not (jax-ml/jax#22249, #16008; not checked here on a GPU). So the compiled count is
  checked against the pre-optimisation count of the same program
  (`Lowered.cost_analysis()`, plain dot/convolution ops), and the latter is used when the
  compiled one is missing or under half of it (`flops_source` says which).
"""
from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp

# Dense (no 2:4 sparsity) peak TFLOP/s per device, (float32, bfloat16), by device_kind.
# float32 on NVIDIA Ampere and later: the TF32 tensor-core peak, because XLA runs float32
# dots and convolutions in TF32 at JAX's default precision (lax.Precision.DEFAULT: "On
# GPU: uses tensorfloat32 if available (e.g. on A100 and H100 GPUs)"); elementwise float32
# work runs at the (much lower) plain FP32 rate, so the fraction is of the tensor-core
# ceiling. float32 on TPU: the bfloat16 MXU peak, because DEFAULT precision runs float32
# matmuls as one bfloat16 pass on TPU. NVIDIA datasheets print tensor-core figures "with
# sparsity"; the dense figures below are half of those.
#   H100 SXM5 / H200 SXM / GH200 (NVIDIA H100 and H200 datasheets): TF32 989* -> 494.7,
#     BF16 1,979* -> 989.4. H100 PCIe: TF32 756* -> 378, BF16 1,513* -> 756.
#     H100 NVL / H200 NVL: TF32 835* -> 417.5, BF16 1,671* -> 835.5.
#   A100 SXM4 and PCIe, 40 and 80 GB (A100 datasheet): TF32 156, BF16 312 (dense).
#   L4 (L4 datasheet): TF32 120* -> 60, BF16 242* -> 121.
#   Cloud TPU system architecture pages, bf16 per chip: v4 275, v5e 197, v5p 459,
#     v6e (Trillium) 918. On v4 and v5p one JAX device is one chip (megacore).
PEAK_TFLOPS = (
    (r"\bH100 PCIe\b", 378.0, 756.0),
    (r"\bH[12]00 NVL\b", 417.5, 835.5),
    (r"\bGH200\b", 494.7, 989.4),
    (r"\bH100\b", 494.7, 989.4),          # "NVIDIA H100 80GB HBM3" (SXM5)
    (r"\bH200\b", 494.7, 989.4),          # "NVIDIA H200" (SXM)
    (r"\bA100\b", 156.0, 312.0),
    (r"\bL4\b", 60.0, 121.0),
    (r"^TPU v4$", 275.0, 275.0),
    (r"^TPU v5( lite|e)$", 197.0, 197.0),
    (r"^TPU v5p?$", 459.0, 459.0),
    (r"^TPU v6( lite|e)$", 918.0, 918.0),
)


def peak_flop_per_s(device_kind: str, dtype: str, override_tflops: float = 0.0):
  """(peak FLOP/s of one device, where the figure came from), or (None, why): the
  override when given (the only way to get a CPU fraction), else PEAK_TFLOPS."""
  if override_tflops > 0:
    return override_tflops * 1e12, "--peak_tflops"
  for pattern, f32, bf16 in PEAK_TFLOPS:
    if re.search(pattern, device_kind):
      tflops = bf16 if dtype == "bfloat16" else f32
      return tflops * 1e12, f"table: {device_kind}, {dtype}"
  return None, f"no peak known for {device_kind!r} (pass --peak_tflops)"


def _flops(stage):
  """`flops` of a Lowered or Compiled's cost analysis, or None. jax 0.12 returns a dict;
  older versions a list with one dict per program; None or -1 where unsupported."""
  try:
    cost = stage.cost_analysis()
  except NotImplementedError:
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  value = (cost or {}).get("flops")
  return float(value) if value is not None and value > 0 else None


def program_flops(fn, *args) -> dict:
  """FLOPs of one call of jit(fn)(*args) (args may be ShapeDtypeStructs: nothing runs):
  the compiled count, or the pre-optimisation one where the compiled count lost the
  work hidden in custom calls (see the module docstring)."""
  lowered = jax.jit(fn).lower(*args)
  compiled = lowered.compile()
  after, before = _flops(compiled), _flops(lowered)
  text = compiled.as_text() or ""
  use_before = before is not None and (after is None or after < 0.5 * before)
  return {"flops": before if use_before else after,
          "flops_source": "xla cost analysis, " + ("before" if use_before else "after")
                          + " optimisation",
          "flops_compiled": after, "flops_lowered": before,
          "flops_loops": _loops(text)}


def _loops(hlo_text: str) -> int:
  """While loops in the optimised HLO that carry floating-point values: their bodies are
  costed once per program, not once per trip. (jax.random's threefry rounds compile to
  small loops that carry only integers, keys and random bits: not counted.)"""
  n = 0
  for line in hlo_text.splitlines():
    carried = re.search(r"=\s*(\(.*?\))\s+while\(", line)
    n += bool(carried and re.search(r"\b(bf16|f16|f32|f64)\[", carried.group(1)))
  return n


def step_flops(model: str, dtype: str, make_config) -> dict:
  """FLOPs of one iteration (n_critic D updates + one G update) of the pinned `model`'s
  train step in `dtype`: the one-step program, critic updates unrolled, XLA's own CPU
  convolutions (so that none hides in the oneDNN custom call), costed without running."""
  from jaxgan.base import sizes  # pylint: disable=g-import-not-at-top
  from jaxgan.core import state as state_lib, train_step  # pylint: disable=g-import-not-at-top
  from jaxgan.ops import convs  # pylint: disable=g-import-not-at-top
  c = make_config(model)
  c.train.dtype, c.train.critic_loop = dtype, "unroll"
  c.train.cpu_conv = "xla"
  shape = (*sizes.hw(c.data.image_size), c.data.channels)
  with convs.provided_by(None):   # XLA's convolutions, whatever the caller's scope
    gan, state = state_lib.create(c, shape, 0)
    step = functools.partial(train_step.make_train_step(gan, c), pattern=None)
    batch = {"images": jax.ShapeDtypeStruct(
        (c.train.n_critic, c.data.batch_size, *shape), jnp.uint8)}
    out = program_flops(step, state, batch)
  out["flops_cpu_conv"] = "xla"
  return out


def add_rates(rec: dict, flops: dict, peak_tflops: float = 0.0) -> dict:
  """Adds FLOPs per iteration, FLOP/s at the median time and, where a peak is known, the
  fraction of it (the peak of all devices the program ran on) to a bench_calls record."""
  rec.update(flops)
  if flops.get("flops") is None:
    return rec
  rec["flop_per_s"] = flops["flops"] / rec["s_per_step_median"]
  peak, source = peak_flop_per_s(rec["device"], rec["dtype"], peak_tflops)
  rec["peak_source"] = source
  if peak is not None:
    rec["peak_flop_per_s"] = peak * jax.device_count()
    rec["peak_fraction"] = rec["flop_per_s"] / rec["peak_flop_per_s"]
  return rec


def table(records) -> list:
  """Markdown rows: per model and setting, s/iter, GFLOP/iter, GFLOP/s, % of peak."""
  rows = ["| model | steps/call | dtype | s/iter | GFLOP/iter | GFLOP/s | % of peak |",
          "|---|---:|---|---:|---:|---:|---:|"]
  for r in records:
    if r.get("flops") is None:
      continue
    frac = f"{100 * r['peak_fraction']:.1f}%" if "peak_fraction" in r else "–"
    rows.append(f"| {r['model']} | {r['steps_per_call']} | {r['dtype']} | "
                f"{r['s_per_step_median']:.4g} | {r['flops'] / 1e9:.3f} | "
                f"{r['flop_per_s'] / 1e9:.1f} | {frac} |")
  return rows
