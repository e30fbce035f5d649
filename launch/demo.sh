#!/usr/bin/env bash
# The main job on the embedded default config: installs what it needs, then runs it.
# Usage: bash launch/demo.sh [WORKDIR] [extra flags such as --config.train.steps=50]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh test
source launch/cpu_env.sh
WORKDIR="${1:-runs/demo}"; shift || true
.venv/bin/python -m babel_jax.main --config configs/demo.py --workdir "$WORKDIR" "$@"
echo "run directory: $WORKDIR (metrics.jsonl, tb/, checkpoints/)"
