#!/usr/bin/env bash
# The probes on an imported pythia-160m-shaped model (random weights) against TransformerLens on
# the same weights and tokens, in one run: import time, then tokens/s of the logit lens and of
# the neuron statistics on each side, as a table (OUT/results.md) and JSON.
#   bash launch/hf_bench.sh [OUT]        (default runs/hf_bench; ~5 minutes on 2 CPU cores)
# TransformerLens, torch and transformers live in .venv-hf (launch/hf_venv.sh), never the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/hf_bench}"
mkdir -p "$OUT"
bash launch/hf_venv.sh bench
source launch/cpu_env.sh
MODEL="$OUT/pythia160m_random"
[ -f "$MODEL/config.json" ] || .venv-hf/bin/python babel_jax/bench/tl_reference.py --hf "$MODEL" --make-random
.venv/bin/python -m babel_jax.bench.hf_bench --hf "$MODEL" --out "$OUT" "${@:2}"
.venv-hf/bin/python babel_jax/bench/tl_reference.py --hf "$MODEL" --batch "$OUT/batch.npz" \
  --out "$OUT/tl.json" 2> >(grep -v '^\[transformers\]\|Loading weights' >&2)
.venv/bin/python - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
j, t = (json.load(open(os.path.join(out, n))) for n in ('jax.json', 'tl.json'))
rows = ['| | babel_jax | TransformerLens | ratio |', '|---|---|---|---|']
for key, name in (('lens_s', 'logit lens tokens/s'), ('neurons_s', 'neuron statistics tokens/s')):
  a, b = j['tokens'] / j[key], t['tokens'] / t[key]
  rows.append(f'| {name} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x |')
rows.append(f"| load of the 160M model (s) | {j['import_s']:.1f} (import to Orbax) + "
            f"{j['restore_s']:.1f} (restore) | {t['load_s']:.1f} (transformers + bridge) | |")
text = (f"{j['params'] / 1e6:.0f}M-parameter pythia-160m-shaped model, {j['tokens']} tokens per "
        f"call, {j['device']}; jax {j['versions']['jax']}, torch {t['versions']['torch']} "
        f"({t['torch_threads']} threads)\n\n" + '\n'.join(rows))
open(os.path.join(out, 'results.md'), 'w').write(text + '\n')
print(text)
PY
