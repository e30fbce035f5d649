#!/usr/bin/env bash
# Training-core benchmark: tokens/s and MFU on the two reference shapes (not part of the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh test
source launch/cpu_env.sh
for cfg in bench_small bench_medium; do
  .venv/bin/python -m babel_jax.main --config "configs/$cfg.py" --mode bench "$@" 2>&1 | grep '^bench'
done
