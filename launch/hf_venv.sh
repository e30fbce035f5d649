#!/usr/bin/env bash
# The torch virtualenv (.venv-hf, git-ignored) for the Hugging Face golden files and the
# TransformerLens benchmark; never the suite's. `bash launch/hf_venv.sh [bench]` (bench adds
# TransformerLens). CPU torch from PyPI's +cpu build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-hf
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
pkgs=("torch==2.13.0+cpu" "transformers>=5.25,<6" "tokenizers>=0.23,<1" "safetensors>=0.8,<1"
      "numpy>=2,<3")
[ "${1:-}" = bench ] && pkgs+=("transformer_lens==4.3.0")
"$VENV/bin/pip" install -q "${pkgs[@]}" 2>&1 | grep -v '^WARNING: Location' || true
