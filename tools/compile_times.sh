#!/usr/bin/env bash
# First-step compile time of a few configs, first launch (empty compilation cache) and
# second launch (the cache the first one wrote), one process after another:
#   bash tools/compile_times.sh [CONFIG ...]
# Prints the "Compiled the first train call" line of each launch (README, "Compiled
# programs are cached"). Uses a fresh cache directory under $OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(configs/wgan_gp.py configs/sngan.py:fashion_dcgan
                                     configs/stylegan2.py:fashion configs/r3gan.py:fashion)
for cfg in "${CONFIGS[@]}"; do
  name="$(echo "$cfg" | tr '/:.' '___')"
  for launch in first second; do
    line="$(python launch.py --config "$cfg" --workdir "$OUT/$name-$launch" \
      --config.train.steps=1 --config.eval.every=0 --config.train.sample_every=0 \
      --config.train.progress=False --config.train.tensorboard=False \
      --config.train.compile_cache="$OUT/xla-$name" 2>&1 | grep "Compiled the first" || true)"
    echo "$cfg, $launch launch: ${line:-no compile line (failed?)}"
  done
done
