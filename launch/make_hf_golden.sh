#!/usr/bin/env bash
# Builds the Hugging Face golden files under tests/golden/hf/ (tiny random GPT-2, GPT-NeoX and
# Llama models, their logits and residual streams) with torch and transformers in their own
# virtualenv (.venv-hf, git-ignored; never the suite's). The suite reads the files with no torch.
#   bash launch/make_hf_golden.sh                   rebuild the golden files (~1 minute + install)
#   bash launch/make_hf_golden.sh --check DIR FAMILY  transformers loads an exported directory
#                                                     and its logits match FAMILY's golden ones
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/hf_venv.sh
.venv-hf/bin/python tests/golden/hf/make_golden.py "$@"
