"""Where a CPU training step's time goes: each of its convolutions, oneDNN against XLA.

    python -m benchmarks.bench --convs --model dcgan64

finds every distinct convolution that the pinned model's compiled step sends to the oneDNN
custom call (jaxgan/cpu/onednn.py), times it alone on random inputs through oneDNN and through
XLA's own convolution, and prints them with how many times one step runs each. A
benchmark, never a test.
"""
from __future__ import annotations

import collections
import re
import time

import jax
import numpy as np

from jaxgan.base import sizes
from jaxgan.cpu import onednn
from jaxgan.core import state as state_lib, train_step
from benchmarks.bench import pinned_config
from jaxgan.ops import convs
from jaxgan.cpu import conv_provider


def bench_convs(model: str, seconds: float, log) -> list:
  """Each distinct convolution of `model`'s training step (found by tracing the step),
  timed alone on random inputs through oneDNN and through XLA, jit-compiled, one after the
  other; with the number of times the step runs it, to show where the step's time goes."""
  ok, why = onednn.available()
  if not ok:
    raise SystemExit(f"--convs needs the oneDNN convolutions: {why}")
  c = pinned_config(model)
  c.train.cpu_conv = "onednn"
  shape = (*sizes.hw(c.data.image_size), c.data.channels)
  gan, state = state_lib.create(c, shape, 0)
  step = train_step.make_train_step(gan, c)
  batch = {"images": np.zeros((c.train.n_critic, c.data.batch_size, *shape), np.uint8)}
  # What XLA compiles, not the traced jaxpr: the custom calls in the optimised HLO.
  with convs.provided_by(conv_provider.make("onednn")):
    hlo = jax.jit(step).lower(state, batch).compile().as_text()
  dims = lambda g: tuple(int(d) for d in g.split(",") if d)
  call = re.compile(
      r"= f32\[([\d,]*)\]\S* custom-call\(.*?custom_call_target=\"" + onednn.TARGET
      + r"\", operand_layout_constraints=\{f32\[([\d,]*)\]\S*, f32\[([\d,]*)\]\S*\}.*?"
      r"backend_config=\{([^}]*)\}")
  found = collections.Counter()
  for m in call.finditer(hlo):
    attr = {k.strip(): int(v.split(":")[0]) for k, v in
            (kv.split("=") for kv in m.group(4).split(","))}
    found[(attr["kind"], dims(m.group(2)), dims(m.group(3)), dims(m.group(1)),
           (attr["sh"], attr["sw"]), ((attr["pt"], attr["pb"]), (attr["pl"], attr["pr"])))] += 1
  names = {0: "forward", 1: "input grad", 2: "weight grad"}
  xla = {0: lambda a, b, o, s, p: convs._plain_conv(a, b, s, p),  # pylint: disable=protected-access
         1: lambda a, b, o, s, p: convs._plain_conv_transpose(a, b, s, p, o[1:3]),  # pylint: disable=protected-access
         2: lambda a, b, o, s, p: convs._weight_grad(a, b, o, s, p)}  # pylint: disable=protected-access
  rows, key = [], jax.random.PRNGKey(0)

  def timed(fn, a, b):
    f = jax.jit(fn)
    jax.block_until_ready(f(a, b))
    ts, t_end = [], time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(ts) < 3:
      t = time.perf_counter()
      jax.block_until_ready(f(a, b))
      ts.append(time.perf_counter() - t)
    return float(np.median(ts))

  for (kind, a, b, o, s, p), n in sorted(found.items()):
    xa, xb = jax.random.normal(key, a), jax.random.normal(key, b)
    t_dnnl = timed(lambda u, v: conv_provider._call(kind, u, v, o, s, p), xa, xb)  # pylint: disable=protected-access
    t_xla = timed(lambda u, v: xla[kind](u, v, o, s, p), xa, xb)
    rows.append({"model": model, "conv": names[kind], "a": a, "b": b, "out": o, "stride": s,
                 "padding": p, "per_step": n, "onednn_ms": 1e3 * t_dnnl, "xla_ms": 1e3 * t_xla,
                 "onednn_impl": onednn.impl_name(kind, o if kind == 1 else a,
                                                 o if kind == 2 else b,
                                                 a if kind == 1 else (b if kind == 2 else o), s, p)})
    log(f"{names[kind]:>11} {a} {b} -> {o} x{n}: oneDNN {1e3 * t_dnnl:.2f} ms, "
        f"XLA {1e3 * t_xla:.2f} ms ({rows[-1]['onednn_impl']})")
  tot = [sum(r["per_step"] * r[k] for r in rows) for k in ("onednn_ms", "xla_ms")]
  log(f"{model}: convolutions per step, timed alone: oneDNN {tot[0]:.1f} ms, XLA {tot[1]:.1f} "
      f"ms ({tot[1] / max(tot[0], 1e-9):.2f}x)")
  return rows
