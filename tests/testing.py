"""Shared test helpers. Importing this first gives every test 8 fake CPU devices."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for the test session, its subprocesses included: the CLI
# tests compile the same tiny programs again and again (a run's second start takes half as long).
# Each pytest-xdist worker has a cache of its own (no two processes write one entry at once).
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ or 'PYTEST_XDIST_WORKER' in os.environ:
  import atexit  # noqa: E402
  import shutil  # noqa: E402
  import tempfile  # noqa: E402
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix=f'babel_jax_test_cache_{os.environ.get("PYTEST_XDIST_WORKER", "")}')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import subprocess  # noqa: E402
import sys  # noqa: E402

from babel_jax import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str = 'tiny', *args: str):
  """Loads configs/<name>.py the way --config does (`configs/<name>.py:ARG` passes ARG): the
  ConfigDict, before validation."""
  return config_lib.load_file(os.path.join(REPO, 'configs', f'{name}.py'), *args)


def config(name: str = 'tiny', **overrides) -> config_lib.Config:
  """configs/<name>.py validated, with `overrides` ('section.field' -> value) applied."""
  return config_lib.replace(config_lib.validate(load_config(name)), **overrides)


def main_command(workdir: str, *overrides: str, config: str = 'tiny', mode: str = 'train'):
  return [sys.executable, '-m', 'babel_jax.main', f'--config={REPO}/configs/{config}.py',
          f'--workdir={workdir}', f'--mode={mode}', *overrides]


def run_main(workdir: str, *overrides: str, **kw) -> subprocess.CompletedProcess:
  return subprocess.run(main_command(workdir, *overrides, **kw), cwd=REPO, capture_output=True,
                        text=True, timeout=300)


SMALL_LANGUAGES = 'python,cpp,javascript'
_SMALL_CORPUS = {}


def corpus_config(**overrides) -> config_lib.Config:
  """tiny.py reading a small real corpus (stdlib, C++ headers, npm), 150 KB per language."""
  return config('tiny', **{
      'model.vocab_size': 512, 'corpus.sources': 'python_stdlib,cpp_headers,npm_js',
      'corpus.languages': SMALL_LANGUAGES, 'corpus.max_bytes_per_language': 150_000,
      'corpus.val_fraction': 0.25, 'tokenizer.sample_bytes_per_language': 100_000,
      'data.source': 'corpus', 'data.languages': SMALL_LANGUAGES, 'data.read_threads': 1,
      'data.prefetch': 2, **overrides})


def small_corpus() -> tuple[str, str]:
  """(corpus_dir, tokenizer_dir) of the small corpus, built once per test process."""
  if not _SMALL_CORPUS:
    import tempfile
    from babel_jax.data import corpus, tokenizer
    cfg = corpus_config()
    root = tempfile.mkdtemp(prefix='babel_corpus_')
    corpus_dir, tok_dir = os.path.join(root, 'corpus'), os.path.join(root, 'corpus', 'tokenizer')
    corpus.build_corpus(cfg.corpus, corpus_dir)
    tokenizer.train(cfg.tokenizer, cfg.model.vocab_size, corpus_dir, tok_dir)
    _SMALL_CORPUS.update(corpus_dir=corpus_dir, tokenizer_dir=tok_dir)
  return _SMALL_CORPUS['corpus_dir'], _SMALL_CORPUS['tokenizer_dir']
