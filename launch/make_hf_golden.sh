#!/usr/bin/env bash
# Builds the Hugging Face golden files under tests/golden/hf/ (tiny random GPT-2, GPT-NeoX and
# Llama models, their logits and residual streams) with torch and transformers in their own
# virtualenv (.venv-hf, git-ignored; never the suite's). The suite reads the files with no torch.
#   bash launch/make_hf_golden.sh                   rebuild the golden files (~1 minute + install)
#   bash launch/make_hf_golden.sh --check DIR FAMILY  transformers loads an exported directory
#                                                     and its logits match FAMILY's golden ones
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-hf
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# The CPU build of torch (no CUDA wheels); versions the golden files were made with.
"$VENV/bin/pip" install -q "torch==2.13.0+cpu" "transformers>=5.25,<6" "tokenizers>=0.23,<1" \
  "safetensors>=0.8,<1" "numpy>=2,<3"
"$VENV/bin/python" tests/golden/hf/make_golden.py "$@"
