"""The benchmark's FLOP counts (benchmarks/bench_flops.py) against closed-form counts; no timing
is asserted."""
import json

import jax
import jax.numpy as jnp
import pytest

from benchmarks import bench, bench_flops
from jaxgan.core import multistep


def _dense_step(state, w):
  """A stand-in train step: one [B, N] x [N, N] matmul, plus a scalar metric."""
  h = state @ w
  return h, {"m": jnp.sum(h)}


def test_single_dense_layer_is_exact():
  x, w = jax.ShapeDtypeStruct((128, 784), jnp.float32), jax.ShapeDtypeStruct(
      (784, 1024), jnp.float32)
  got = bench_flops.program_flops(lambda x, w: x @ w, x, w)
  assert got["flops"] == 2 * 128 * 784 * 1024
  assert got["flops_loops"] == 0


def test_scan_body_is_costed_once_unroll_k_times():
  """Why the bench costs the ONE-step program: XLA costs a lax.scan's body once."""
  k, b, n = 4, 64, 256
  h, ws = jax.ShapeDtypeStruct((b, n), jnp.float32), jax.ShapeDtypeStruct(
      (k, n, n), jnp.float32)
  one = bench_flops.program_flops(_dense_step, h, jax.ShapeDtypeStruct((n, n), jnp.float32))
  scan = bench_flops.program_flops(multistep.chain([_dense_step], scan=True), h, ws)
  unroll = bench_flops.program_flops(multistep.chain([_dense_step] * k, scan=False), h, ws)
  assert one["flops"] >= 2 * b * n * n
  assert scan["flops"] == pytest.approx(one["flops"], rel=0.01)      # not k times
  assert scan["flops_loops"] == 1
  assert unroll["flops"] == pytest.approx(k * one["flops"], rel=0.01)


def _mlp_gan_hand_count() -> int:
  """Closed-form dot FLOPs of one mlp_gan iteration (configs/gan.py:mnist_a, batch 128,
  n_critic 1): 2*in*out per dense layer per example. D update: G forward, D forward on
  real and fake, D backward (weight and input gradients) on both, less the input gradient
  of D's first layer (the images need none). G update: G forward, D forward, D backward
  (input gradients only: D's weights are fixed), G backward (weights and inputs), less
  the input gradient of G's first layer (z needs none)."""
  b, g, d = 128, (64, 256, 512, 1024, 784), (784, 1024, 512, 256, 1)
  fwd = lambda w: sum(2 * b * i * o for i, o in zip(w[:-1], w[1:]))
  f_g, f_d = fwd(g), fwd(d)
  first_d, first_g = 2 * b * d[0] * d[1], 2 * b * g[0] * g[1]
  d_update = f_g + 2 * f_d + 2 * (2 * f_d - first_d)
  g_update = f_g + f_d + f_d + (2 * f_g - first_g)
  return d_update + g_update


def test_mlp_gan_iteration_matches_hand_count(capsys):
  """End to end through `python -m benchmarks.bench --model mlp_gan --calls`: the record's
  FLOPs per iteration are the dots' closed-form count plus XLA's elementwise work (the
  activations, losses and Adam: measured +1.7%)."""
  from jaxgan.ops import convs  # pylint: disable=g-import-not-at-top
  assert bench.main(["--model", "mlp_gan", "--calls", "--seconds", "0.01", "--repeats",
                     "1"]) == 0
  assert convs.current_provider() is None      # the bench's scopes leave nothing behind
  out = capsys.readouterr()
  rec = [json.loads(l) for l in out.out.splitlines() if l.startswith("{")][-1]
  hand = _mlp_gan_hand_count()
  assert 1.0 <= rec["flops"] / hand <= 1.05, (rec["flops"], hand)
  assert rec["flops_loops"] == 0 and rec["flops_cpu_conv"] == "xla"
  assert rec["flop_per_s"] == pytest.approx(rec["flops"] / rec["s_per_step_median"])
  if jax.devices()[0].platform == "cpu":
    assert "peak_fraction" not in rec
  assert "| mlp_gan | 1 | float32 |" in out.err


@pytest.mark.parametrize("kind,dtype,tflops", [
    ("NVIDIA H100 80GB HBM3", "float32", 494.7), ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
    ("NVIDIA H100 PCIe", "bfloat16", 756.0), ("NVIDIA H100 NVL", "bfloat16", 835.5),
    ("NVIDIA H200", "bfloat16", 989.4), ("NVIDIA H200 NVL", "float32", 417.5),
    ("NVIDIA GH200 480GB", "bfloat16", 989.4), ("NVIDIA A100-SXM4-80GB", "float32", 156.0),
    ("NVIDIA A100 80GB PCIe", "bfloat16", 312.0), ("NVIDIA L4", "bfloat16", 121.0),
    ("TPU v4", "float32", 275.0), ("TPU v5 lite", "bfloat16", 197.0),
    ("TPU v5", "bfloat16", 459.0), ("TPU v5p", "bfloat16", 459.0),
    ("TPU v6 lite", "bfloat16", 918.0)])
def test_peak_table(kind, dtype, tflops):
  peak, _ = bench_flops.peak_flop_per_s(kind, dtype)
  assert peak == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("kind", ["cpu", "AMD EPYC", "NVIDIA L40S", "TPU v3", "Tesla T4"])
def test_no_peak_unless_given(kind):
  assert bench_flops.peak_flop_per_s(kind, "float32")[0] is None
  assert bench_flops.peak_flop_per_s(kind, "float32", 2.5)[0] == 2.5e12


def test_rates_and_fraction():
  rec = {"s_per_step_median": 0.5, "device": "NVIDIA H100 80GB HBM3", "dtype": "bfloat16",
         "model": "m", "steps_per_call": 10}
  bench_flops.add_rates(rec, {"flops": 1e12})
  assert rec["flop_per_s"] == 2e12
  assert rec["peak_fraction"] == pytest.approx(2e12 / (989.4e12 * jax.device_count()))
  assert "| m | 10 | bfloat16 | 0.5 | 1000.000 | 2000.0 |" in bench_flops.table([rec])[2]


def test_every_timed_program_runs_with_the_cpu_speedups_in_scope(monkeypatch):
  """The benchmark holds the platform's convolution provider in scope around everything
  it times, as a training run does: the provider is part of JAX's jit key, so a step
  called outside the scope traces again without it (wgan_gp28 measured ~15% slower)."""
  from jaxgan.ops import convs  # pylint: disable=g-import-not-at-top
  seen = []
  monkeypatch.setattr(bench, "_dispatch", lambda *a: seen.append(convs.current_provider()))
  assert bench.main(["--model", "wgan_gp28"]) == 0
  assert bench.main(["--model", "wgan_gp28", "--cpu-conv", "xla"]) == 0
  assert [repr(p) for p in seen] == ["OneDNNConvs()", "None"]
  assert convs.current_provider() is None
