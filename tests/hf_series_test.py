"""configs/pythia_series.py's workflow on the golden GPT-NeoX as a two-revision Hub series read
offline from the Hub cache: `--mode import` -> `--mode corpus` -> `--mode tokenizer` with the
imported hf_tokenizer.json -> `--mode probe` over the imported revisions, in one workdir, through
the entry points each mode calls."""

from tests import testing  # noqa: F401  (first: fake devices)

import math
import os
import tempfile
from unittest import mock

from absl.testing import absltest

from babel_jax import data as data_lib
from babel_jax.data import corpus
from babel_jax.data import tokenizer as tok_lib
from babel_jax.dynamics import run_report
from babel_jax.probes import result as result_lib
from babel_jax.probes import stream
from babel_jax.runtime import hf_checkpoints as hfc
from babel_jax.runtime.rundir import RunDir
from tests.hf_import_test import hub_cache

LANGS = 'python,javascript,cpp'


def series_config():
  """pythia_series.py with the golden NeoX's sizes (its config.json) and a local corpus."""
  return testing.config('pythia_series', **{
      'model.vocab_size': 384, 'model.d_model': 64, 'model.d_ff': 256, 'model.num_heads': 4,
      'model.num_layers': 2, 'model.max_len': 64, 'data.seq_len': 64,
      'corpus.sources': 'python_stdlib,npm_js,cpp_headers', 'corpus.languages': LANGS,
      'corpus.max_bytes_per_language': 200_000, 'data.languages': LANGS,
      'data.read_threads': 1, 'probe.tokens_per_language': 4096})


class PythiaSeriesWorkflowTest(absltest.TestCase):

  def test_import_corpus_tokenizer_probe_over_the_revisions(self):
    cache = hub_cache({'step0': 'neox', 'step1000': 'neox_changed'})
    workdir = tempfile.mkdtemp()
    cfg = series_config()
    with mock.patch.dict(os.environ, {'HF_HUB_CACHE': cache, 'HF_HUB_OFFLINE': '1'}), \
        mock.patch('huggingface_hub.constants.HF_HUB_CACHE', cache), \
        mock.patch('huggingface_hub.constants.HF_HUB_OFFLINE', True):
      manifest = hfc.import_run(cfg, workdir, 'org/tiny', 'step0:step1000:1000')
    self.assertEqual([r['step'] for r in manifest['revisions']], [0, 1000])
    self.assertEqual(manifest['duplicates'], [])
    corpus.build_corpus(cfg.corpus, data_lib.corpus_dir(cfg, workdir))
    tok_lib.use_hf(os.path.join(workdir, hfc.TOKENIZER), cfg.model.vocab_size,
                   data_lib.corpus_dir(cfg, workdir), data_lib.tokenizer_dir(cfg, workdir))
    stats = stream.walk(cfg, workdir)
    self.assertEqual(stats['probed'], [0, 1000])
    run = RunDir(workdir)
    for step in (0, 1000):
      self.assertTrue(os.path.isfile(os.path.join(run.probes_dir, f'{step}.json')), step)
    first, last = result_lib.load_all(run)
    for r in (first, last):
      self.assertEqual(list(r.loss), LANGS.split(','))
      self.assertTrue(all(math.isfinite(v) for v in r.loss.values()), r.loss)
    for lang in LANGS.split(','):
      self.assertNotAlmostEqual(first.loss[lang], last.loss[lang], places=4, msg=lang)
    summary = run_report.write(run, cfg.dynamics)
    self.assertTrue(summary)
    self.assertTrue(os.path.isfile(os.path.join(run.report_dir, 'index.md')))


if __name__ == '__main__':
  absltest.main()
