"""Input-pipeline benchmark (`python -m benchmarks.bench --data`): images per second that each
data path delivers, and, with `--model M`, the images per second M's train step consumes,
measured in the same process one after the other.

  python -m benchmarks.bench --data                        # in-memory paths + a generated stream
  python -m benchmarks.bench --data --prepared DIR --model dcgan64

In memory (embedded Fashion-MNIST at 28 and 64 px, TFDS Fashion-MNIST when ../shared has
it): the seeded batch gather plus the transfer to the device. Streamed (jaxgan/data/stream.py):
batches read from the ArrayRecord files of a `jaxgan.data.prepare` directory and PNG-decoded
by the reader's workers, as host uint8 arrays. Without --prepared, 4,096 generated 64x64 RGB
images (smooth gradients, discs and noise: PNGs of realistic size, not constant ones) are
prepared in a temporary directory first.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def synthetic_folder(path: str, n: int, size: int = 64, seed: int = 0) -> str:
  """`n` PNG images of `size` px: a two-colour gradient, 1-3 discs and pixel noise each."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  os.makedirs(path, exist_ok=True)
  gen = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  for i in range(n):
    c0, c1 = gen.integers(0, 256, 3), gen.integers(0, 256, 3)
    t = np.clip(xx * gen.uniform(-1, 1) + yy * gen.uniform(-1, 1) + 0.5, 0, 1)[..., None]
    img = np.clip(c0 * (1 - t) + c1 * t + gen.normal(0, 8, (size, size, 3)), 0, 255)
    im = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(gen.integers(1, 4))):
      x, y = gen.integers(0, size, 2)
      r = int(gen.integers(size // 16, size // 3))
      draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in
                                                             gen.integers(0, 256, 3)))
    im.save(os.path.join(path, f"{i:05d}.png"))
  return path


def memory_paths(seconds: float, data_dir: str, log) -> list:
  """Images/s delivered to the device by the in-memory batch stream (gather + transfer)."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from jaxgan import data as data_lib  # pylint: disable=g-import-not-at-top
  from jaxgan.base import sharding  # pylint: disable=g-import-not-at-top
  mesh = sharding.make_mesh()
  out = []
  for name, ddir, size in (("", "", 28), ("fashion_mnist", data_dir, 28), ("", "", 64)):
    c = default.get_config().data
    c.name, c.data_dir, c.image_size, c.batch_size = name, ddir, size, 128
    try:
      t0 = time.perf_counter()
      data = data_lib.load(c)
      load_s = time.perf_counter() - t0
    except (FileNotFoundError, ValueError) as e:
      log(f"data {name}: skipped ({e})")
      continue
    batches = data_lib.Batches(data, 128, 1, 0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
      b = sharding.put_batch(batches.for_step(n), mesh)
      n += 1
    jax.block_until_ready(b)
    dt = time.perf_counter() - t0
    out.append({"kind": "input_pipeline", "path": "memory", "dataset": data.name,
                "image_size": size, "images": len(data.images),
                "load_and_decode_s": round(load_s, 2), "images_per_s": n * 128 / dt})
  return out


def streamed(prepared: str, seconds: float, log) -> dict:
  """Images/s of the streaming reader over `prepared` (generated when empty)."""
  from jaxgan.data import prepare, records, stream  # pylint: disable=g-import-not-at-top
  tmp = None
  if not prepared:
    tmp = tempfile.TemporaryDirectory(prefix="jaxgan_bench_data_")
    log("data: generating and preparing 4,096 64x64 images")
    prepare.prepare(synthetic_folder(os.path.join(tmp.name, "src"), 4096),
                    os.path.join(tmp.name, "prepared"), size=64, channels=3, shards=4)
    prepared = os.path.join(tmp.name, "prepared")
  try:
    m = records.read_manifest(prepared)
    workers = stream.default_workers()
    ips = stream.bench_images_per_s(prepared, 128, seconds)
  finally:
    if tmp is not None:
      tmp.cleanup()
  return {"kind": "input_pipeline", "path": "stream", "dataset": records.dataset_name(
      prepared) if not tmp else "generated", "image_size": m["image_size"],
          "channels": m["channels"], "images": m["count"], "decode_workers": workers,
          "images_per_s": ips}


def run(args, make_config, log) -> list:
  """The records of `--data`: memory paths, the stream, and with --model the step's need."""
  recs = memory_paths(args.seconds, args.data_dir, log) + [
      streamed(args.prepared, args.seconds, log)]
  if args.model:
    from benchmarks.bench_calls import bench_calls  # pylint: disable=g-import-not-at-top
    step = bench_calls(args.model, 1, "float32", "auto", args.seconds, args.repeats,
                       make_config, log)[0]
    c = make_config(args.model)
    need = c.data.batch_size * c.train.n_critic / step["s_per_step_median"]
    recs.append({"kind": "step_consumption", "model": args.model, "images_per_s": need,
                 "stream_over_step": recs[-1]["images_per_s"] / need})
    log(f"the stream delivers {recs[-2]['images_per_s']:.0f} images/s; {args.model}'s step "
        f"consumes {need:.0f} images/s ({recs[-1]['stream_over_step']:.1f}x)")
  return recs
