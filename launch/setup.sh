#!/usr/bin/env bash
# Creates .venv (if missing) and installs babel_jax with its test extras. Idempotent: re-runs
# pip only when setup.cfg changed. Usage: bash launch/setup.sh [extras, default "test"]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1-test}"  # "" installs babel_jax alone (the demo's needs)
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv (apt)"; apt-get update -qq && apt-get install -y -qq python3-venv
fi
# System packages, installed with apt when missing (as root): tcmalloc makes CPU training steps
# faster (launch/cpu_env.sh); the demo corpus reads the JDK's src.zip, the C++ headers and npm;
# evaluation runs PHP, Go, C# (mono), C++, Java and JavaScript programs.
apt_missing=()
ls /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 >/dev/null 2>&1 || apt_missing+=(libtcmalloc-minimal4)
ls /usr/lib/jvm/*/lib/src.zip >/dev/null 2>&1 || apt_missing+=(openjdk-17-jdk-headless)
ls -d /usr/include/c++/* >/dev/null 2>&1 || apt_missing+=(libstdc++-12-dev)
[ -d /usr/lib/node_modules/npm ] || [ -d /usr/share/nodejs/npm ] || apt_missing+=(nodejs npm)
# Toolchains that run generated programs in --mode eval (a missing one skips its language).
# BABEL_EVAL_LANGUAGES picks which (default all; the demo names only its own languages').
wants() { [[ " ${BABEL_EVAL_LANGUAGES:-php go csharp cpp java javascript} " == *" $1 "* ]]; }
wants php && { command -v php >/dev/null || apt_missing+=(php-cli); }
wants go && { command -v go >/dev/null || apt_missing+=(golang-go); }
wants csharp && { command -v mcs >/dev/null || apt_missing+=(mono-mcs mono-runtime); }
wants cpp && { command -v g++ >/dev/null || apt_missing+=(g++); }
wants java && { command -v javac >/dev/null || apt_missing+=(openjdk-17-jdk-headless); }
wants javascript && { command -v node >/dev/null || apt_missing+=(nodejs); }
# The evaluation sandbox's jail (without it: a weaker hand-written one, see README).
command -v bwrap >/dev/null || apt_missing+=(bubblewrap)
if [ "${BABEL_SETUP_DRY_RUN:-}" = 1 ]; then  # tests/launch_test.py: what apt would install
  echo "apt: ${apt_missing[*]}"; exit 0
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${apt_missing[*]} (apt)"
    { apt-get install -y -qq "${apt_missing[@]}" || { apt-get update -qq && apt-get install -y -qq "${apt_missing[@]}"; }; } >/dev/null \
      || echo "warning: could not install ${apt_missing[*]}" >&2
  else
    echo "note: missing ${apt_missing[*]} (apt, needs root): CPU steps slower / demo sources absent" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.babel_jax_installed"
want="$(sha256sum setup.cfg | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing babel_jax${EXTRAS:+[$EXTRAS]} into .venv (first run takes a minute or two)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
