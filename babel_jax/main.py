"""Command-line entry point: `python -m babel_jax.main --config configs/X.py --workdir DIR`.

Every config field can be overridden on the command line (`--config.train.steps=100`). Each
--mode is one function; later capabilities add modes here.
"""

from __future__ import annotations

import json
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from babel_jax import cli
from babel_jax import config as config_lib
from babel_jax import data
from babel_jax import io
from babel_jax.bench import data_bench, probe_bench, restore_bench, train_bench
from babel_jax.data import corpus, tokenizer
from babel_jax.dynamics import run_report as report, transfer
from babel_jax.errors import ConfigError
from babel_jax.evaluation import evaluate
from babel_jax.experiment import calibrate, driver, runs
from babel_jax.probes import stream
from babel_jax.runtime import hf_checkpoints
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop, plan

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (created if missing).')
_MODE = flags.DEFINE_enum(
    'mode', 'train',
    ['experiment', 'calibrate', 'corpus', 'tokenizer', 'train', 'probe', 'report', 'eval',
     'transfer', 'plan', 'bench', 'data_bench', 'probe_bench', 'import', 'export'],
    'What to run.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host: host:port of process 0 (jax.distributed); also '
    'from JAX_COORDINATOR_ADDRESS. On TPU VMs and SLURM use --distributed to auto-detect.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-host: number of processes '
                                      '(or JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-host: this process (or '
                                   'JAX_PROCESS_ID).')
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() '
                                 '(implied by --coordinator_address).')
_FOLLOW = flags.DEFINE_bool('follow', False, '--mode probe: keep probing new checkpoints of a '
                            'run that is still training, until it finishes.')
_BENCH_STEPS = flags.DEFINE_integer(
    'bench_steps', 5, 'Timed train steps for --mode bench (and data_bench; 0 skips them there).')
_PYTHON_RESULTS = flags.DEFINE_string(
    'python_results', None, '--mode transfer: per_problem.json of a primary-only (Python) run.')
_TARGET_RESULTS = flags.DEFINE_string(
    'target_results', None, '--mode transfer: per_problem.json of an L-only run.')
_LANGUAGE = flags.DEFINE_string('language', None, '--mode transfer: the new language L.')
_OUT = flags.DEFINE_string('out', None, '--mode transfer: where to write P (a JSON list); '
                           '--mode export: the Hugging Face directory to write.')
_HF = flags.DEFINE_string('hf', None, '--mode import: a Hugging Face model directory, or a Hub '
                          'repository "org/name[@revision]".')
_REVISIONS = flags.DEFINE_string('revisions', '', '--mode import: revisions to import as a '
                                 'checkpoint series: "a,b,c" or "stepA:stepB:S" (Pythia).')
_STEP = flags.DEFINE_integer('step', -1, '--mode export: the checkpoint step (-1: the latest).')
_EXPORT_DTYPE = flags.DEFINE_enum('export_dtype', 'float32', ['float32', 'bfloat16'],
                                  '--mode export: the dtype of the written weights.')
_CHECKPOINT_RESULTS = flags.DEFINE_string(
    'checkpoint_results', None, '--mode transfer: per_problem.json of a checkpoint: prints '
    '|P∩C|/|C|.')
# Modes that need no config (all their inputs are flags) and no workdir.
_NO_CONFIG = ('transfer', 'export')
_NO_WORKDIR = ('plan', 'bench', 'data_bench', 'probe_bench', 'transfer')


def run_experiment(cfg, workdir: str) -> None:
  driver.run(cfg, workdir)


def run_import(cfg, workdir: str) -> None:
  if not _HF.value:
    raise ConfigError('--mode import needs --hf=DIR or --hf=org/name[@revision]')
  hf_checkpoints.import_run(cfg, workdir, _HF.value, _REVISIONS.value)


def run_export(cfg, workdir: str) -> None:
  del cfg  # the run's own config.json describes the model
  if not _OUT.value:
    raise ConfigError('--mode export needs --out=DIR (the Hugging Face directory to write)')
  hf_checkpoints.export_run(workdir, _OUT.value, _STEP.value, _EXPORT_DTYPE.value)


def run_calibrate(cfg, workdir: str) -> None:
  print(f'calibration table: {calibrate.run(cfg, workdir)}')


def run_corpus(cfg, workdir: str) -> None:
  corpus.build_corpus(cfg.corpus, data.corpus_dir(cfg, workdir))


def run_tokenizer(cfg, workdir: str) -> None:
  if cfg.tokenizer.hf_json:
    tokenizer.use_hf(cfg.tokenizer.hf_json, cfg.model.vocab_size, data.corpus_dir(cfg, workdir),
                     data.tokenizer_dir(cfg, workdir))
    return
  tokenizer.train(cfg.tokenizer, cfg.tokenizer.vocab_size or cfg.model.vocab_size,
                  data.corpus_dir(cfg, workdir), data.tokenizer_dir(cfg, workdir))


def run_train(cfg, workdir: str) -> None:
  loop.train(cfg, workdir)


def run_probe(cfg, workdir: str) -> None:
  saved = RunDir(workdir).config()
  if saved is not None:
    langs, run_langs = config_lib.items(cfg.data.languages), config_lib.items(
        saved['data']['languages'])
    missing = [lang for lang in run_langs if lang not in langs]
    if missing:
      raise ConfigError(f'data.languages={",".join(langs)} leaves out {missing} of the run\'s '
                        f'data.languages={",".join(run_langs)} ({workdir}/config.json); probe '
                        'with the run\'s languages (an import writes those of its --config)')
  stream.walk(cfg, workdir, follow=_FOLLOW.value)
  run_report(cfg, workdir)


def run_report(cfg, workdir: str) -> None:
  report.write(workdir, cfg.dynamics)
  io.log(f'report: {workdir}/report/index.md')


def run_bench(cfg, workdir: str | None) -> None:
  del workdir
  print(train_bench.report(cfg, train_bench.benchmark(cfg, steps=_BENCH_STEPS.value)),
        flush=True)


def run_data_bench(cfg, workdir: str) -> None:
  if cfg.data.source != 'corpus':
    raise ConfigError('--mode data_bench needs --config.data.source=corpus')
  if not workdir and not cfg.data.corpus_dir:
    raise ConfigError('--mode data_bench reads <workdir>/corpus: pass --workdir or '
                      'data.corpus_dir')
  result = data_bench.benchmark(cfg, workdir)
  train = None
  if _BENCH_STEPS.value > 0:
    train = train_bench.benchmark(cfg, steps=_BENCH_STEPS.value)['tokens_per_s']
  print(data_bench.report(cfg, result, train), flush=True)


def run_probe_bench(cfg, workdir: str | None) -> None:
  del workdir
  print(probe_bench.report(cfg, probe_bench.probe_vs_forward(cfg),
                           restore_bench.restore_overlap(cfg)), flush=True)


def run_plan(cfg, workdir: str | None) -> None:
  del workdir
  # A study's runs hold its planted controls: their id ranges grow the vocabulary.
  print(plan.report(plan.plan(runs.with_controls(cfg))), flush=True)


def run_eval(cfg, workdir: str) -> None:
  evaluate.walk(cfg, workdir)


def run_transfer(cfg, workdir: str | None) -> None:
  """Writes P, the Python-specific problems, from two runs' evaluation results; with a
  checkpoint's results also prints |P∩C|/|C| (docs/method.md, knowledge transfer)."""
  del cfg, workdir
  needed = {'--python_results': _PYTHON_RESULTS.value, '--target_results': _TARGET_RESULTS.value,
            '--language': _LANGUAGE.value, '--out': _OUT.value}
  missing = [k for k, v in needed.items() if not v]
  if missing:
    raise ConfigError(f'--mode transfer needs {", ".join(missing)}')

  def solved(path: str, language: str) -> dict[str, bool]:
    try:
      return io.read_json(path)[language]
    except (OSError, ValueError, KeyError) as e:
      raise ConfigError(f'{path}: expected a per_problem.json with results for {language!r} '
                        f'({type(e).__name__}: {e})') from e

  p = transfer.python_specific(solved(_PYTHON_RESULTS.value, 'python'),
                               solved(_TARGET_RESULTS.value, _LANGUAGE.value))
  io.atomic_write(_OUT.value, json.dumps(p, indent=1))
  print(f'P: {len(p)} Python-specific problems -> {_OUT.value}')
  if _CHECKPOINT_RESULTS.value:
    c = {t for t, ok in solved(_CHECKPOINT_RESULTS.value, _LANGUAGE.value).items() if ok}
    print(f'|P∩C|/|C| = {transfer.knowledge_transfer(set(p), c)} (|C| = {len(c)})')


MODES = {'experiment': run_experiment, 'calibrate': run_calibrate, 'corpus': run_corpus,
         'tokenizer': run_tokenizer, 'train': run_train, 'probe': run_probe, 'report': run_report,
         'eval': run_eval, 'transfer': run_transfer, 'plan': run_plan, 'bench': run_bench,
         'data_bench': run_data_bench, 'probe_bench': run_probe_bench, 'import': run_import,
         'export': run_export}


def _warn_cpu_allocator() -> None:
  """XLA:CPU steps run ~15% slower on glibc malloc; launch/cpu_env.sh preloads tcmalloc."""
  if jax.default_backend() == 'cpu' and 'tcmalloc' not in os.environ.get('LD_PRELOAD', ''):
    logging.warning('CPU run without tcmalloc: steps are ~15% slower. Run through launch/*.sh '
                    'or `source launch/cpu_env.sh` first (needs libtcmalloc-minimal4).')


def init_distributed() -> None:
  """jax.distributed.initialize from flags, JAX_* variables, or the cluster's auto-detection."""
  address = _COORDINATOR.value or os.environ.get('JAX_COORDINATOR_ADDRESS')
  if not (address or _DISTRIBUTED.value):
    return
  env_int = lambda name: int(os.environ[name]) if name in os.environ else None
  num = _NUM_PROCESSES.value if _NUM_PROCESSES.value is not None else env_int('JAX_NUM_PROCESSES')
  pid = _PROCESS_ID.value if _PROCESS_ID.value is not None else env_int('JAX_PROCESS_ID')
  if 'cpu' in os.environ.get('JAX_PLATFORMS', ''):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU-only multi-process
  jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid)
  logging.info('process %d of %d, %d local / %d global devices', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def main(argv) -> None:
  del argv
  verbose = flags.FLAGS['verbosity'].present
  if not verbose:
    # Orbax and JAX log every save and backend probe at INFO; our progress lines go to stdout.
    logging.set_verbosity(logging.WARNING)
  cli.run_reporting(_run, show_tracebacks=verbose)


def _run() -> None:
  init_distributed()
  cfg = _CONFIG.value
  mode = _MODE.value
  if cfg is None and mode == 'import':  # the model comes from config.json; the rest defaults
    cfg = config_lib.default_config()
  if cfg is None and mode not in _NO_CONFIG:
    raise ConfigError('--config is required, e.g. --config configs/tiny.py')
  if cfg is not None:
    cfg = config_lib.validate(cfg)
  if mode not in _NO_WORKDIR:
    if not _WORKDIR.value:
      raise ConfigError('--workdir is required for --mode ' + mode)
    RunDir(_WORKDIR.value).ensure_writable()
  if mode in ('experiment', 'calibrate', 'train', 'probe', 'bench', 'probe_bench'):
    _warn_cpu_allocator()
  MODES[mode](cfg, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
