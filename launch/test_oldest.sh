#!/usr/bin/env bash
# The oldest supported dependency set (launch/constraints-oldest.txt), tested: builds a second
# virtualenv (default /tmp/babel_jax_oldest; reused while the constraints and setup.cfg are
# unchanged), installs babel_jax's dependencies under those constraints and runs a subset of
# the suite that touches every pinned library (JAX/Flax model and losses, optax training, Orbax
# checkpoints, the grain pipeline, sampling, the GPU bench smoke). Extra arguments go to pytest.
# Usage: bash launch/test_oldest.sh [pytest args]   (OLDEST_VENV=DIR, PYTHON=python3.X)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${OLDEST_VENV:-/tmp/babel_jax_oldest}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.babel_jax_oldest"
want="$(cat setup.cfg launch/constraints-oldest.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the oldest supported set into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # Dependencies only (the tests import babel_jax from this checkout).
  deps="$("$VENV/bin/python" - <<'PY'
import configparser
c = configparser.ConfigParser()
c.read('setup.cfg')
reqs = c['options']['install_requires'].split('\n') + c['options.extras_require']['test'].split('\n')
print('\n'.join(r.strip() for r in reqs if r.strip()))
PY
)"
  echo "$deps" > "$VENV/requirements.txt"
  "$VENV/bin/python" -m pip install -q -c launch/constraints-oldest.txt -r "$VENV/requirements.txt"
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c 'import jax, flax, optax, orbax.checkpoint as o, grain, numpy, scipy
print("oldest set: jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__,
      "orbax-checkpoint", o.__version__, "grain", getattr(grain, "__version__", "?"),
      "numpy", numpy.__version__, "scipy", scipy.__version__)'
source launch/cpu_env.sh
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=8}"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/model_test.py tests/losses_test.py \
  tests/train_test.py tests/checkpoint_test.py tests/sampling_test.py tests/pipeline_test.py \
  tests/gpu_bench_test.py "$@"
