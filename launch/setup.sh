#!/usr/bin/env bash
# Creates .venv (if missing) and installs babel_jax with its test extras. Idempotent: re-runs
# pip only when setup.cfg changed. Usage: bash launch/setup.sh [extras, default "test"]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-test}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv (apt)"; apt-get update -qq && apt-get install -y -qq python3-venv
fi
# tcmalloc makes CPU training steps faster (see launch/cpu_env.sh); optional, so only a warning.
if ! ls /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing libtcmalloc-minimal4 (apt)"
    { apt-get install -y -qq libtcmalloc-minimal4 || { apt-get update -qq && apt-get install -y -qq libtcmalloc-minimal4; }; } >/dev/null \
      || echo "warning: could not install libtcmalloc-minimal4; CPU steps will be slower" >&2
  else
    echo "note: libtcmalloc-minimal4 not installed (needs root); CPU steps will be slower" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.babel_jax_installed"
want="$(sha256sum setup.cfg | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing babel_jax[$EXTRAS] into .venv (first run takes a minute or two)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi
