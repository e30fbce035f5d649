#!/usr/bin/env bash
# The main job on the embedded default config: installs what it needs, then runs the whole
# Babel Tower study (--mode experiment): corpus, tokenizer, primary and continual pre-training,
# probes and HumanEval over the checkpoints, the mixture bake-off (natural, UniMax and
# Algorithm 1 from scratch with 3 seeds each) and the report. Run it again to resume after a stop.
# Usage: bash launch/demo.sh [WORKDIR] [extra flags such as --config.experiment.seeds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
# The toolchains of the demo's languages only (configs/demo.py: PHP and Go when the Debian
# sources are fetched, else JavaScript and C++); babel_jax alone, without the tests' extras.
debian="${BABEL_JAX_SOURCES:-$HOME/.cache/babel_jax/debian}"
if [ -f "$debian/paths.txt" ]; then langs="php go"; else langs="javascript cpp"; fi
BABEL_EVAL_LANGUAGES="$langs" bash launch/setup.sh ""
source launch/cpu_env.sh
WORKDIR="${1:-runs/demo}"; shift || true
.venv/bin/python -m babel_jax.main --config configs/demo.py --workdir "$WORKDIR" \
  --mode experiment "$@"
echo "report: $WORKDIR/report/index.md (numbers: $WORKDIR/mixtures.json, $WORKDIR/controls.json)"
