"""Benchmarks (never tests): the training step against the PyTorch and Keras peers, the
input pipeline, and scaling over devices. Prints one JSON record per measurement in the
peers' format (../shared/bench/peers/common.py).

  python -m benchmarks.bench --model wgan_gp28 [--seconds 5]
  python -m benchmarks.bench --all --peers            # + torch eager/compile, Keras graph/XLA
  python -m benchmarks.bench --data [--prepared DIR] [--model dcgan64]  # input pipelines
  python -m benchmarks.bench --devices 1,2,4,8 --model mlp_gan   # forced host devices
  python -m benchmarks.bench --population 8 --model wgan_gp28      # 8 vmapped runs vs 8 single
  python -m benchmarks.bench --convs --model dcgan64   # each convolution of the step: oneDNN vs XLA
  python -m benchmarks.bench --model dcgan64 --cpu-conv xla          # XLA's own CPU convolutions
  python -m benchmarks.bench --model wgan_gp28 --calls   # + FLOPs/iteration, FLOP/s, % of peak

The pinned models (../shared/bench/MODELS.md) are built from the project's own configs and
modules; only the optimizer settings are pinned (Adam 2e-4, betas (0.5, 0.999), eps 1e-8).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEERS = os.path.join(ROOT, "..", "shared", "bench", "peers")
MODELS = ("mlp_gan", "wgan_gp28", "dcgan64", "wgan_gp64", "resnet32")
# Timed by benchmarks/bench_calls.py only (no peer spec in the harness): wgan_gp64's networks at
# the configs/wgan_gp.py:celeba64 shape (64x64x3, batch 512, latent 128).
CALL_MODELS = MODELS + ("celeba64",)
_CPU_CONV = ["auto"]  # --cpu-conv, applied to every pinned config


def pinned_config(model: str):
  """The project config that is the pinned benchmark model `model`."""
  from configs import dcgan, gan, sngan, wgan_gp  # pylint: disable=g-import-not-at-top
  c = {"mlp_gan": lambda: gan.get_config("mnist_a"),
       "wgan_gp28": lambda: wgan_gp.get_config(),
       "dcgan64": lambda: dcgan.get_config(),
       "wgan_gp64": lambda: wgan_gp.get_config("gray64"),
       "resnet32": lambda: sngan.get_config("cifar10_uncond"),
       "celeba64": lambda: wgan_gp.get_config("celeba64")}[model]()
  for net in ("g", "d"):
    c.optim[net].name, c.optim[net].lr = "adam", 2e-4
    c.optim[net].b1, c.optim[net].b2, c.optim[net].eps = 0.5, 0.999, 1e-8
  c.labels.noise = 0.0  # the peers use plain 0/1 targets
  c.d_loss_average = False
  c.train.cpu_conv = _CPU_CONV[0]
  return c


def _common(peers_dir: str):
  path = os.path.abspath(peers_dir)
  if not os.path.exists(os.path.join(path, "common.py")):
    raise FileNotFoundError(
        f"The benchmark harness {os.path.join(path, 'common.py')} is missing: it ships in "
        "../shared/bench/peers beside the project; pass --peers-dir DIR to point at it.")
  # The harness is a file beside the project, not a package: load it by path.
  spec = importlib.util.spec_from_file_location("bench_peers_common",
                                                os.path.join(path, "common.py"))
  common = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(common)
  return common


def versions():
  import flax, jax, jaxlib, numpy, optax  # pylint: disable=g-import-not-at-top,multiple-imports
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "numpy": numpy.__version__,
          "device": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform,
          "device_count": jax.device_count()}


def bench_model(model: str, common, seconds: float, repeats: int, warmup_s: float,
                num_devices: int = 0, log=None):
  """Times the real jit-compiled train step of `model` on in-memory random data."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxgan.base import sharding, sizes  # pylint: disable=g-import-not-at-top
  from jaxgan.core import state as state_lib, train_step  # pylint: disable=g-import-not-at-top
  c = pinned_config(model)
  spec = common.MODELS[model]
  shape = (*sizes.hw(c.data.image_size), c.data.channels)
  mesh = sharding.make_mesh(num_devices)
  gan, state = state_lib.create(c, shape, 0)
  g_ref, d_ref = common.model_summary(model)
  got = (state_lib.count_params(state.g.params), state_lib.count_params(state.d.params))
  if got != (g_ref["params"], d_ref["params"]):
    raise AssertionError(f"{model}: parameter counts {got} differ from the pinned "
                         f"{(g_ref['params'], d_ref['params'])}")
  repl = sharding.replicated(mesh)
  box = [jax.device_put(state, repl)]
  step_fn = jax.jit(train_step.make_train_step(gan, c),
                    in_shardings=(repl, sharding.batch_sharding(mesh)),
                    out_shardings=(repl, repl), donate_argnums=0)
  gen = np.random.default_rng(0)
  pool = [sharding.put_batch({"images": gen.integers(
      0, 256, (c.train.n_critic, spec["batch"], *shape), dtype=np.uint8)}, mesh)
          for _ in range(8)]
  it = [0, None]

  def step():
    box[0], it[1] = step_fn(box[0], pool[it[0] % 8])
    it[0] += 1

  def sync():
    jax.block_until_ready(it[1])
    float(it[1]["g_loss"])

  from jaxgan.ops import convs  # pylint: disable=g-import-not-at-top
  provider = convs.current_provider()   # main() holds the platform's speed-ups in scope
  t0 = time.perf_counter()
  step()
  sync()
  compile_first = time.perf_counter() - t0
  res = common.bench(step, sync, seconds=seconds, repeats=repeats, warmup_s=warmup_s, log=log)
  res["first_iter_s"] = compile_first
  losses = {k: float(v) for k, v in it[1].items() if k.endswith("_loss")}
  return common.make_record(
      "jax_jit", "jax/flax", versions(), model, res,
      extra={"cpu_conv": c.train.cpu_conv, "conv_provider": repr(provider), "final_losses": losses,
             "losses_finite": all(np.isfinite(list(losses.values()))), "params_G": got[0], "params_D": got[1], "num_devices": mesh.devices.size})


def bench_population(model: str, members: int, common, seconds: float, repeats: int,
                     warmup_s: float, log=None) -> dict:
  """Throughput of `members` runs trained as one population, vmapped and unrolled
  (train.population_mode), against the same runs trained one after another (one single-run
  step time, times `members`), measured one after another in this process."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxgan.run import population, sweep  # pylint: disable=g-import-not-at-top
  from jaxgan.base import sizes  # pylint: disable=g-import-not-at-top
  from jaxgan.core import state as state_lib, train_step  # pylint: disable=g-import-not-at-top
  c = pinned_config(model)
  spec = common.MODELS[model]
  shape = (*sizes.hw(c.data.image_size), c.data.channels)
  gen = np.random.default_rng(0)
  times, compile_s = {}, {}
  for mode in ("single", "vmap", "unroll"):
    n = 1 if mode == "single" else members
    configs = [sweep.apply(c, {"seed": i}) for i in range(n)]
    built = [state_lib.create(m, shape, 0) for m in configs]
    gan = built[0][0]
    step = train_step.make_train_step(gan, c)
    if mode == "single":
      fn, box = jax.jit(step, donate_argnums=0), [built[0][1]]
      lead = ()
    else:
      fn = jax.jit(population.population_step(step, n, mode), donate_argnums=0)
      box, lead = [population.stack([s for _, s in built])], (n,)
    pool = [{"images": jax.device_put(gen.integers(
        0, 256, (*lead, c.train.n_critic, spec["batch"], *shape), dtype=np.uint8))}
            for _ in range(4)]
    it = [0, None]

    def one():
      box[0], it[1] = fn(box[0], pool[it[0] % 4])
      it[0] += 1

    t0 = time.perf_counter()
    one()
    jax.block_until_ready(it[1])
    compile_s[mode] = time.perf_counter() - t0
    res = common.bench(one, lambda: jax.block_until_ready(it[1]), seconds=seconds,
                       repeats=repeats, warmup_s=warmup_s, log=log)
    times[mode] = res["s_per_iter_median"]
  return {"kind": "population", "model": model, "members": members,
          "s_per_iter_single": times["single"], "s_per_iter_vmap": times["vmap"],
          "s_per_iter_unroll": times["unroll"], "first_call_s": compile_s,
          "runs_per_s_sequential": 1.0 / times["single"],
          "population_speedup_vmap": members * times["single"] / times["vmap"],
          "population_speedup_unroll": members * times["single"] / times["unroll"],
          "versions": versions()}


PEERS = (("torch_eager", "torch_peers.py", ["--peer", "eager"], "TORCH_PYTHON", ".venv-torch"),
         ("torch_compile", "torch_peers.py", ["--peer", "compile"], "TORCH_PYTHON", ".venv-torch"),
         ("keras_graph", "keras_peers.py", ["--peer", "graph"], "TF_PYTHON", ".venv-tf"),
         ("keras_xla", "keras_peers.py", ["--peer", "xla"], "TF_PYTHON", ".venv-tf"))


def _peer_python(env_var: str, venv: str, peers_dir: str):
  for cand in (os.environ.get(env_var), os.path.join(peers_dir, venv, "bin", "python"),
               os.path.join(ROOT, venv, "bin", "python")):
    if cand and os.path.exists(cand):
      return cand
  return None


def run_peers(model: str, peers_dir: str, seconds: float, log, names=None):
  """Runs each peer (or those in `names`) on `model` in a child process, one after another."""
  out = []
  for name, script, args, env_var, venv in PEERS:
    if names and name not in names:
      continue
    py = _peer_python(env_var, venv, peers_dir)
    if py is None:
      log(f"peer {name}: skipped, no interpreter (set {env_var} or create "
          f"{os.path.join(peers_dir, venv)}; see the peers' README)")
      continue
    cmd = [py, script, "--model", model, "--seconds", str(seconds), "--quiet", *args]
    r = subprocess.run(cmd, cwd=peers_dir, capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
      log(f"peer {name} failed: {r.stderr[-2000:]}")
      continue
    out.append(json.loads(lines[-1]))
  return out


def _parser() -> argparse.ArgumentParser:
  from jaxgan.core.precision import DTYPES  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--model", choices=CALL_MODELS)
  p.add_argument("--all", action="store_true", help="all five pinned models")
  p.add_argument("--seconds", type=float, default=5.0, help="minimum length of a repeat")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--warmup-seconds", type=float, default=10.0)
  p.add_argument("--peers", action="store_true", help="also run the PyTorch/Keras peers")
  p.add_argument("--peers-dir", default=DEFAULT_PEERS)
  p.add_argument("--peer-names", default="", help="with --peers: a comma-separated subset of "
                 + ", ".join(p[0] for p in PEERS))
  p.add_argument("--data", action="store_true", help="benchmark the input pipeline "
                 "(benchmarks/bench_data.py); with --model, beside that model's step")
  p.add_argument("--prepared", default="", help="with --data: a jaxgan.data.prepare "
                 "directory to stream (default: 4,096 generated 64x64 images in a temp dir)")
  p.add_argument("--data-dir", default=os.path.join(ROOT, "..", "shared", "data",
                                                    "tensorflow_datasets"))
  p.add_argument("--devices", default="", help="e.g. 1,2,4,8: one child process per count "
                 "with that many forced host devices")
  p.add_argument("--num-devices", type=int, default=0, help=argparse.SUPPRESS)
  p.add_argument("--population", type=int, default=0,
                 help="time N seeds as one vmapped population against N single runs")
  p.add_argument("--convs", action="store_true", help="time each convolution of the step "
                 "through oneDNN and through XLA")
  p.add_argument("--cpu-conv", default="auto", choices=("auto", "onednn", "xla"),
                 help="config.train.cpu_conv for the pinned models (default auto)")
  p.add_argument("--steps_per_call", type=int, default=1, help="time K steps per compiled "
                 "call against 1 (benchmarks/bench_calls.py)")
  p.add_argument("--dtype", default="float32", choices=tuple(DTYPES),
                 help="compute dtype of G and D, timed against float32")
  p.add_argument("--call_loop", default="auto", choices=("auto", "unroll", "scan"))
  p.add_argument("--calls", action="store_true", help="time through bench_calls even at "
                 "1 step per call in float32 (no ../shared harness needed)")
  p.add_argument("--no_flops", action="store_true", help="skip the FLOP count (one extra "
                 "compilation per model and dtype)")
  p.add_argument("--peak_tflops", type=float, default=0.0, help="peak TFLOP/s of one device "
                 "for the %% of peak (default: benchmarks/bench_flops.py's table; none on CPU)")
  p.add_argument("--out", default="", help="append the JSON records to this file")
  return p


def _run_devices(args, models, emit, log, records):
  """One child process per device count (XLA_FLAGS must be set before jax starts)."""
  for n in [int(x) for x in args.devices.split(",")]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    for m in models:
      cmd = [sys.executable, "-m", "benchmarks.bench", "--model", m, "--seconds",
             str(args.seconds), "--repeats", str(args.repeats), "--warmup-seconds",
             str(args.warmup_seconds), "--num-devices", str(n), "--peers-dir", args.peers_dir,
             "--cpu-conv", args.cpu_conv]
      r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
      line = [l for l in r.stdout.splitlines() if l.startswith("{")]
      if r.returncode or not line:
        log(f"{m} on {n} devices failed: {r.stderr[-2000:]}")
        continue
      emit(json.loads(line[-1]))
  for r in records:
    print(f"# {r['model']}: {r['num_devices']} device(s): {r['img_per_s_median']:.1f} "
          "images/s", file=sys.stderr)


def _run_population(args, models, emit, log):
  common = _common(args.peers_dir)
  for m in models:
    rec = bench_population(m, args.population, common, args.seconds, args.repeats,
                           args.warmup_seconds, log=log)
    emit(rec)
    print(f"# {m}: population of {args.population}: vmap "
          f"{rec['population_speedup_vmap']:.2f}x, unroll "
          f"{rec['population_speedup_unroll']:.2f}x the throughput of {args.population} "
          "sequential runs", file=sys.stderr)


def jax_device_kind() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.devices()[0].device_kind


def _run_models(args, models, emit, log, records, peer_names):
  """jaxgan's step per model, with the PyTorch/Keras peers and a ratio table."""
  common = _common(args.peers_dir)
  from benchmarks import bench_flops  # pylint: disable=g-import-not-at-top
  for m in models:
    log(f"{m}: jaxgan")
    rec = bench_model(m, common, args.seconds, args.repeats, args.warmup_seconds,
                      args.num_devices, log=log)
    if not args.no_flops:   # FLOPs of one iteration (XLA's cost analysis) and FLOP/s
      rec = bench_flops.add_rates({**rec, "s_per_step_median": rec["s_per_iter_median"],
                                   "dtype": "float32", "steps_per_call": 1,
                                   "device": jax_device_kind()},
                                  bench_flops.step_flops(m, "float32", pinned_config),
                                  args.peak_tflops)
      print(f"# {m}: {rec['flops'] / 1e9:.3f} GFLOP per iteration, "
            f"{rec['flop_per_s'] / 1e9:.1f} GFLOP/s", file=sys.stderr)
    emit(rec)
    if args.peers:
      for rec in run_peers(m, os.path.abspath(args.peers_dir), args.seconds, log, peer_names):
        emit(rec)
  if not args.peers:
    return
  print("\n| model | peer | s/iter (median) | jaxgan speed-up |", file=sys.stderr)
  print("|---|---|---:|---:|", file=sys.stderr)
  for m in models:
    mine = [r for r in records if r["model"] == m and r["peer"] == "jax_jit"][0]
    for r in records:
      if r["model"] == m:
        ratio = r["s_per_iter_median"] / mine["s_per_iter_median"]
        print(f"| {m} | {r['peer']} | {r['s_per_iter_median']:.4f} | {ratio:.2f}x |",
              file=sys.stderr)


def _run_calls(args, models, emit, log):
  """bench_calls per model, then the FLOPs table (FLOPs per iteration from XLA's cost
  analysis of the one-step program, FLOP/s, % of peak: benchmarks/bench_flops.py)."""
  from benchmarks import bench_flops  # pylint: disable=g-import-not-at-top
  from benchmarks.bench_calls import bench_calls  # pylint: disable=g-import-not-at-top
  records = []
  for m in models:
    for rec in bench_calls(m, args.steps_per_call, args.dtype, args.call_loop, args.seconds,
                           args.repeats, pinned_config, log, flops=not args.no_flops,
                           peak_tflops=args.peak_tflops):
      records.append(rec)
      emit(rec)
  if not args.no_flops:
    print("\n" + "\n".join(bench_flops.table(records)), file=sys.stderr)


def main(argv=None):
  p = _parser()
  args = p.parse_args(argv)
  _CPU_CONV[0] = args.cpu_conv
  peer_names = [n for n in args.peer_names.split(",") if n] or None
  unknown = sorted(set(peer_names or ()) - {q[0] for q in PEERS})
  if unknown:
    p.error(f"unknown --peer-names {unknown}; valid: {', '.join(q[0] for q in PEERS)}")
  from jaxgan.run import platform  # pylint: disable=g-import-not-at-top
  platform.tune_host_allocator()
  log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True)
  records = []

  def emit(rec):
    records.append(rec)
    line = json.dumps(rec)
    print(line, flush=True)
    if args.out:
      with open(args.out, "a") as f:
        f.write(line + "\n")

  if args.data:
    from benchmarks import bench_data  # pylint: disable=g-import-not-at-top
    for rec in bench_data.run(args, pinned_config, log):
      emit(rec)
    return 0
  models = MODELS if args.all else ([args.model] if args.model else [])
  if not models:
    p.error("pass --model NAME, --all or --data")
  if "celeba64" in models and not (args.steps_per_call > 1 or args.dtype != "float32"
                                   or args.calls):
    p.error("--model celeba64 has no peer spec; time it with --calls, --steps_per_call "
            "or --dtype")
  # Every program timed here is traced and run with the platform's speed-ups in scope, as
  # a training run's are (a JAX user context: a call outside it would trace again without).
  with platform.speedups(args.cpu_conv):
    _dispatch(args, models, emit, log, records, peer_names)
  return 0


def _dispatch(args, models, emit, log, records, peer_names):
  if args.steps_per_call > 1 or args.dtype != "float32" or args.calls:
    _run_calls(args, models, emit, log)
  elif args.convs:
    from benchmarks.bench_convs import bench_convs  # pylint: disable=g-import-not-at-top
    for m in models:
      for rec in bench_convs(m, min(args.seconds, 1.0), log):
        emit(rec)
  elif args.devices:
    _run_devices(args, models, emit, log, records)
  elif args.population:
    _run_population(args, models, emit, log)
  else:
    _run_models(args, models, emit, log, records, peer_names)


if __name__ == "__main__":
  sys.exit(main())
