#!/usr/bin/env bash
# The main job on the embedded default config: installs what it needs, builds the corpus and
# its tokenizer (reused when already built), then trains (resumes when interrupted).
# Usage: bash launch/demo.sh [WORKDIR] [extra flags such as --config.train.steps=50]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh test
source launch/cpu_env.sh
WORKDIR="${1:-runs/demo}"; shift || true
for mode in corpus tokenizer train probe; do
  .venv/bin/python -m babel_jax.main --config configs/demo.py --workdir "$WORKDIR" --mode "$mode" "$@"
done
echo "run directory: $WORKDIR (corpus/, metrics.jsonl, tb/, checkpoints/, probes/, report/index.md)"
