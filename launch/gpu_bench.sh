#!/usr/bin/env bash
# One command for a GPU host: checks the GPU, installs what the bench lacks into the given Python,
# then measures train / attention / probe / sampling throughput and prints a table (about 4
# minutes on one H100 or H200, compilation included; see babel_jax/bench/gpu_bench.py).
#
# Usage: bash launch/gpu_bench.sh [--python PATH] [--no-install] [--cpu-smoke] [--out DIR]
#                                 [--budget-s S] [--wheels DIR] [--dry-run]
#   --python PATH  the interpreter to run (and install into); default: python3
#   --no-install   use only what that Python has (hosts without network); fails with one line
#                  naming what is missing. The bench imports jax (with its CUDA plugin), flax,
#                  optax, numpy, ml_collections and absl-py, nothing else.
#   --wheels DIR   install missing packages from this folder of wheels first, offline (default
#                  .whl when it exists; launch/fetch_gpu_wheels.sh fills it on a networked machine)
#   --cpu-smoke    the same code path with tiny shapes on the CPU (no GPU needed, under 2 minutes)
#   --out DIR      where results.md and results.json go (default runs/gpu_bench)
#   --dry-run      print what would be installed and run, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3; INSTALL=1; SMOKE=0; DRY=0; WHEELS=""; ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --cpu-smoke) SMOKE=1; ARGS+=(--cpu-smoke); shift ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --out|--budget-s) ARGS+=("$1" "$2"); shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) echo "gpu_bench.sh: unknown option $1 (see the usage at the top of this file)" >&2; exit 2 ;;
  esac
done
[ -z "$WHEELS" ] && [ -d .whl ] && WHEELS=.whl
die() { echo "gpu_bench.sh: error: $*" >&2; exit 2; }
command -v "$PY" >/dev/null || die "no Python at --python $PY"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); babel_jax needs 3.11+ (JAX 0.10 does; JAX 0.11+ needs 3.12)"

# 1. The device.
CUDA_EXTRA=cuda12
if [ "$SMOKE" = 0 ]; then
  command -v nvidia-smi >/dev/null || die "no NVIDIA GPU here (nvidia-smi not found); --cpu-smoke runs the code path on the CPU"
  gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)" \
    || die "nvidia-smi sees no GPU: ${gpu%%$'\n'*}"
  echo "gpu_bench.sh: $(echo "$gpu" | wc -l) GPU(s): $(echo "$gpu" | head -1)"
  driver="$(echo "$gpu" | head -1 | awk -F', ' '{print $3}')"
  # CUDA 13 wheels need driver 580 or newer.
  [ "${driver%%.*}" -ge 580 ] 2>/dev/null && CUDA_EXTRA=cuda13
  source launch/gpu_env.sh
else
  export JAX_PLATFORMS=cpu
  # The smoke times the code path, not the CPU: XLA:CPU's LLVM optimisation is not worth its
  # compile time here.
  export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
  export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-${TMPDIR:-/tmp}/babel_jax_smoke_cache}"
fi

# 2. What the bench imports, and what is missing.
missing() {
  "$PY" - "$SMOKE" <<'PY'
import importlib, sys
smoke = sys.argv[1] == '1'
out = []
for module, package in (('jax', 'jax'), ('flax', 'flax'), ('optax', 'optax'), ('numpy', 'numpy'),
                        ('ml_collections', 'ml_collections'), ('absl', 'absl-py')):
  try:
    importlib.import_module(module)
  except Exception:
    out.append(package)
if not smoke and 'jax' not in out:
  import jax
  try:
    gpu = bool(jax.devices('gpu'))
  except RuntimeError:
    gpu = False
  if not gpu:
    out.append('jax-cuda-plugin')
print(' '.join(out))
PY
}
need="$(missing)"
if [ -n "$need" ]; then
  if [ "$INSTALL" = 0 ]; then
    die "--no-install, but $PY lacks: $need. Carry wheels (bash launch/fetch_gpu_wheels.sh on a networked machine, copy .whl/ here) and run without --no-install"
  fi
  EXTRA_SPEC="[$CUDA_EXTRA]"
  [ "$SMOKE" = 1 ] && EXTRA_SPEC=""
  pins="$("$PY" - <<'PY'
import configparser
c = configparser.ConfigParser()
c.read('setup.cfg')
print('\n'.join(r.strip() for r in c['options']['install_requires'].split('\n') if r.strip()))
PY
)"
  reqs=()
  for pkg in $need; do
    case "$pkg" in
      jax-cuda-plugin)
        v="$("$PY" -c 'import jax; print(jax.__version__)')"
        reqs+=("jax[$CUDA_EXTRA]==$v") ;;
      jax) reqs+=("$(echo "$pins" | grep -E '^jax[<>=]' | sed "s/^jax/jax$EXTRA_SPEC/")") ;;
      *) reqs+=("$(echo "$pins" | grep -iE "^${pkg//-/[-_]}[<>=]" || echo "$pkg")") ;;
    esac
  done
  echo "gpu_bench.sh: installing into $PY: ${reqs[*]}"
  if [ "$DRY" = 0 ]; then
    if [ -n "$WHEELS" ] && "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${reqs[@]}"; then
      :
    else
      "$PY" -m pip install -q "${reqs[@]}"
    fi
    need="$(missing)"
    [ -z "$need" ] || die "still missing after the install: $need"
  fi
fi

# 3. The bench (this checkout on the path; nothing of babel_jax is installed).
echo "+ PYTHONPATH=$PWD $PY -m babel_jax.bench.gpu_bench ${ARGS[*]}"
[ "$DRY" = 1 ] && exit 0
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m babel_jax.bench.gpu_bench "${ARGS[@]}"
