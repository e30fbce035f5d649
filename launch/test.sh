#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite on 8 fake CPU devices, in as many
# pytest-xdist workers as there are cores (at most 4; BABEL_TEST_WORKERS overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh test
source launch/cpu_env.sh
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=8}"
cores="$(nproc)"
workers="${BABEL_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" tests "$@"
