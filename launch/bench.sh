#!/usr/bin/env bash
# Benchmarks (not part of the tests): train-step tokens/s and MFU on the two reference shapes,
# then the grain pipeline's tokens/s on the demo corpus at those shapes against the train step.
# Usage: bash launch/bench.sh [WORKDIR holding (or to hold) the demo corpus, default runs/demo]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh test
source launch/cpu_env.sh
WORKDIR="${1:-runs/demo}"
for cfg in bench_small bench_medium; do
  .venv/bin/python -m babel_jax.main --config "configs/$cfg.py" --mode bench 2>&1 | grep '^bench'
done
for mode in corpus tokenizer; do
  .venv/bin/python -m babel_jax.main --config configs/demo.py --workdir "$WORKDIR" --mode $mode \
    | tail -1
done
for cfg in bench_small bench_medium; do
  .venv/bin/python -m babel_jax.main --config "configs/$cfg.py" --workdir "$WORKDIR" \
    --mode data_bench --config.data.source=corpus \
    --config.data.languages=python,java,cpp,javascript 2>&1 | grep '^data_bench'
done
for cfg in bench_small bench_medium; do
  .venv/bin/python -m babel_jax.main --config "configs/$cfg.py" --mode probe_bench 2>&1 \
    | grep '^probe_bench'
done
