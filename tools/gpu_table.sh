#!/usr/bin/env bash
# The README's GPU table: jaxgan's train step (float32 at 1 and K steps per call, bfloat16 at K)
# and the PyTorch peers (eager, torch.compile) on the same GPU, one process at a time.
#
#   OUT=results/ PEERS=path/to/bench/peers WHEELS=dir/with/ml_collections bash tools/gpu_table.sh
#
# Writes $OUT/jax.jsonl, $OUT/torch.jsonl and logs; stops starting new runs after
# $BUDGET_S seconds (default 500) so that a leased machine's time limit is kept.
# Summarise with: python tools/gpu_summary.py $OUT
set -u
OUT=${OUT:-gpu_out}; PEERS=${PEERS:-../shared/bench/peers}; BUDGET_S=${BUDGET_S:-500}
K=${K:-10}; SECONDS_PER_REPEAT=${SECONDS_PER_REPEAT:-0.5}
MODELS=${MODELS:-"mlp_gan wgan_gp28 dcgan64 wgan_gp64 celeba64 resnet32"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
start=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - start) )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import benchmarks.bench_calls" && echo "jaxgan imports"
  python3 -c "import jax, jaxlib, flax, optax, torch; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())"
} > "$OUT/env.txt" 2>&1
run() {  # run LIMIT_S LOG CMD...: skipped when less than LIMIT_S/2 of the budget is left
  local limit=$1 log=$2; shift 2
  if [ "$(left)" -lt $(( limit / 2 )) ]; then echo "skipped (budget): $*" >> "$OUT/skipped.txt"; return; fi
  local t=$(( limit < $(left) ? limit : $(left) ))
  echo "== $* (limit ${t}s, $(left)s left)" >> "$log"
  timeout "$t" "$@" 2>> "$log"
  echo "== rc $?" >> "$log"
}
for m in $MODELS; do
  run 90 "$OUT/jax.log" python3 -m benchmarks.bench --model "$m" --steps_per_call "$K" \
    --dtype bfloat16 --seconds "$SECONDS_PER_REPEAT" --repeats 3 --out "$OUT/jax.jsonl" > /dev/null
done
for m in $MODELS; do
  run 45 "$OUT/torch.log" python3 tools/bench_torch_cuda.py --peers-dir "$PEERS" --model "$m" \
    --peer eager --seconds "$SECONDS_PER_REPEAT" >> "$OUT/torch.jsonl"
done
for m in $MODELS; do
  run 120 "$OUT/torch.log" python3 tools/bench_torch_cuda.py --peers-dir "$PEERS" --model "$m" \
    --peer compile --seconds "$SECONDS_PER_REPEAT" >> "$OUT/torch.jsonl"
done
echo "done in $(( $(date +%s) - start )) s" >> "$OUT/env.txt"
