"""Command-line entry point: `python -m babel_jax.main --config configs/X.py --workdir DIR`.

Every config field can be overridden on the command line (`--config.train.steps=100`). Each
--mode is one function; later capabilities add modes here.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from babel_jax import config as config_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (created if missing).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'bench'], 'What to run.')
_BENCH_STEPS = flags.DEFINE_integer('bench_steps', 5, 'Timed steps for --mode bench.')


def run_train(cfg, workdir: str) -> None:
  from babel_jax.train import loop
  loop.train(cfg, workdir)


def run_bench(cfg, workdir: str | None) -> None:
  del workdir
  from babel_jax.bench import train_bench
  print(train_bench.report(cfg, train_bench.benchmark(cfg, steps=_BENCH_STEPS.value)),
        flush=True)


MODES = {'train': run_train, 'bench': run_bench}


def _warn_cpu_allocator() -> None:
  """XLA:CPU steps run ~15% slower on glibc malloc; launch/cpu_env.sh preloads tcmalloc."""
  import jax
  if jax.default_backend() == 'cpu' and 'tcmalloc' not in os.environ.get('LD_PRELOAD', ''):
    logging.warning('CPU run without tcmalloc: steps are ~15% slower. Run through launch/*.sh '
                    'or `source launch/cpu_env.sh` first (needs libtcmalloc-minimal4).')


def main(argv) -> None:
  del argv
  cfg = _CONFIG.value
  if cfg is None:
    sys.exit('error: --config is required, e.g. --config configs/tiny.py')
  try:
    config_lib.validate(cfg)
    if _MODE.value != 'bench':
      if not _WORKDIR.value:
        raise config_lib.ConfigError('--workdir is required for --mode ' + _MODE.value)
      config_lib.check_workdir(_WORKDIR.value)
    _warn_cpu_allocator()
    MODES[_MODE.value](cfg, _WORKDIR.value)
  except config_lib.ConfigError as e:
    sys.exit(f'config error: {e}')


if __name__ == '__main__':
  app.run(main)
