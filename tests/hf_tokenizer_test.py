"""The Hugging Face tokenizer kind: a tokenizer.json beside sentencepiece, the explicit
target_mask of batches whose id 0 is a real token, and continual pre-training of an imported
model on a corpus read with its own tokenizer."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import pickle
import tempfile

import jax
import numpy as np
import tokenizers
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.data import facts
from babel_jax.data import manifest as manifest_lib, mixture_spec, pipeline
from babel_jax.data import tokenizer as tok_lib
from babel_jax.errors import DataError, TokenizerError
from babel_jax.probes import knowledge
from babel_jax.runtime import hf_checkpoints as hfc
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import losses, loop
from tests.hf_import_test import restored
from tests.hf_test import GOLDEN

GPT2_JSON = os.path.join(GOLDEN, 'gpt2', 'tokenizer.json')
LANGS = tuple(testing.SMALL_LANGUAGES.split(','))
TEXT = 'def f(x):\n\treturn x! + 1  # caf\u00e9 \u2581 \U0001f600\n\n    pass\n'
_HF_DIR = {}


def hf_tokenizer_dir() -> tuple[str, str]:
  """(corpus_dir, tokenizer_dir) of the small corpus read with the golden GPT-2 tokenizer.json."""
  if not _HF_DIR:
    corpus_dir, _ = testing.small_corpus()
    out = os.path.join(tempfile.mkdtemp(), 'hf_tok')
    tok_lib.use_hf(GPT2_JSON, 384, corpus_dir, out)
    _HF_DIR.update(corpus_dir=corpus_dir, tokenizer_dir=out)
  return _HF_DIR['corpus_dir'], _HF_DIR['tokenizer_dir']


class HFTokenizerTest(absltest.TestCase):

  def test_golden_tokenizer_is_lossless_and_matches_the_library(self):
    tok = tok_lib.HFTokenizer(GPT2_JSON)
    ref = tokenizers.Tokenizer.from_file(GPT2_JSON)
    ids = tok.encode(TEXT)
    self.assertEqual(ids, ref.encode(TEXT, add_special_tokens=False).ids)
    self.assertEqual(tok.decode(ids), TEXT)
    self.assertEqual(tok.encode_batch([TEXT, 'x!']), [ids, tok.encode('x!')])
    self.assertEqual((tok.vocab_size, tok.bos_id, tok.eos_id), (384, 0, 0))  # <|endoftext|>
    self.assertEqual(len(tok.pieces()), 384)
    self.assertTrue(batch_lib.zero_is_token(tok))
    self.assertFalse(batch_lib.zero_is_token(None))
    again = pickle.loads(pickle.dumps(tok))  # grain workers
    self.assertEqual(again.encode(TEXT), ids)

  def test_one_line_errors(self):
    with self.assertRaisesRegex(TokenizerError, 'no Hugging Face tokenizer file'):
      tok_lib.HFTokenizer('/nonexistent/tokenizer.json')
    corpus_dir, _ = testing.small_corpus()
    out = os.path.join(tempfile.mkdtemp(), 't')
    with self.assertRaisesRegex(TokenizerError, 'no such file'):
      tok_lib.use_hf('/nonexistent/tokenizer.json', 384, corpus_dir, out)
    with self.assertRaisesRegex(TokenizerError, r'384 tokens, more than model.vocab_size=300'):
      tok_lib.use_hf(GPT2_JSON, 300, corpus_dir, out)
    with self.assertRaisesRegex(TokenizerError, 'no tokenizer at'):
      tok_lib.load_info(tempfile.mkdtemp())
    r = testing.run_main(tempfile.mkdtemp(), '--config.tokenizer.hf_json=/nonexistent.json',
                         mode='tokenizer')
    self.assertNotEqual(r.returncode, 0)
    self.assertIn("tokenizer.hf_json='/nonexistent.json': no such file", r.stderr)
    self.assertNotIn('Traceback', r.stderr)

  def test_id_zero_is_a_target_padding_is_not(self):
    docs = [(np.array([5, 0, 7, 0], np.int32), 0), (np.array([0, 9, 0], np.int32), 1)]
    b = batch_lib.pack_documents(docs, 2, 4, masked=True)
    # Row 0: 5->0, 0->7, 7->0 (two of them id 0), then the second document's 0->9; row 1 its
    # 9->0, then padding.
    np.testing.assert_array_equal(b['targets'], [[0, 7, 0, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(b[batch_lib.TARGET_MASK], [[1, 1, 1, 1], [1, 0, 0, 0]])
    xent = np.ones((2, 4), np.float32)
    sums = losses.token_sums(xent, b['targets'], b['lang_ids'], 2, batch_lib.target_mask(b))
    self.assertEqual((float(sums['count']), sums['lang_count'].tolist()), (5.0, [3.0, 2.0]))
    # Without the field (sentencepiece, synthetic) the same targets read 0 as 'no target'.
    plain = batch_lib.pack_documents(docs, 2, 4)
    self.assertNotIn(batch_lib.TARGET_MASK, plain)
    self.assertEqual(int(batch_lib.target_mask(plain).sum()), 2)

  def test_scored_rows_count_the_body_whatever_its_ids(self):
    tok = tok_lib.HFTokenizer(GPT2_JSON)
    fact_set = facts.generate(4, seed=3)
    rows, layout = knowledge.rows(tok, fact_set, ['python', 'go'], {}, 64, 384, tok.bos_id,
                                  tok.eos_id)
    self.assertEqual(layout.languages, ('python', 'go'))
    for r in rows:
      mask = r[batch_lib.TARGET_MASK]
      start = int(np.argmax(mask))  # the body's first target, predicted from the prompt's end
      self.assertTrue(mask[start:].all() and not mask[:start].any())
      np.testing.assert_array_equal(r['targets'][:start], 0)
    padded = knowledge.pad(rows)
    lengths = [len(r['tokens']) for r in rows]
    for r, n in zip(padded, lengths):
      np.testing.assert_array_equal(r[batch_lib.TARGET_MASK][n:], 0)
    r = facts.render(fact_set.taught[0], 'python', [])
    _, body = knowledge.split_encode(tok, r.head + r.signature, r.body)
    self.assertEqual(int(batch_lib.target_mask(rows[0]).sum()), len(body))

  def test_corpus_pipeline_reads_the_corpus_with_the_hf_tokenizer(self):
    corpus_dir, tok_dir = hf_tokenizer_dir()
    info = tok_lib.load_info(tok_dir)
    self.assertEqual(info['settings']['kind'], 'hf')
    self.assertEqual(info['roundtrip']['num_failures'], 0)
    self.assertGreater(info['tokens']['python']['train'], 0)
    tok, _ = tok_lib.load(tok_dir, manifest_lib.load(corpus_dir))
    self.assertIsInstance(tok, tok_lib.HFTokenizer)
    spec = mixture_spec.MixtureSpec({'python': 0.5, 'cpp': 0.5, 'javascript': 0.0})
    with self.assertRaisesRegex(DataError, 'more than model.vocab_size=256'):
      pipeline.CorpusSource(corpus_dir, tok_dir, LANGS, spec, 4, 64, seed=0, read_threads=1,
                            vocab_size=256)
    s = pipeline.CorpusSource(corpus_dir, tok_dir, LANGS, spec, 8, 64, seed=0, read_threads=1,
                              prefetch=0, vocab_size=384)
    counted_zero = 0
    for _ in range(60):
      b = next(s)
      mask = b[batch_lib.TARGET_MASK]
      seg = b['segment_ids']
      # The target counts exactly where the next token is of the same document (the last
      # column's next token is the row's extra one: rows hold seq_len + 1 tokens).
      same = (seg[:, 1:] == seg[:, :-1]) & (seg[:, :-1] > 0)
      np.testing.assert_array_equal(mask[:, :-1], same)
      np.testing.assert_array_equal(b['targets'][mask == 0], 0)
      # Every document ends in <|endoftext|> (id 0): a target that counts.
      counted_zero += int(((b['targets'] == 0) & (mask == 1)).sum())
    s.close()
    self.assertGreater(counted_zero, 0)

  def test_continual_pretraining_of_an_imported_model_with_its_tokenizer(self):
    imported = tempfile.mkdtemp()
    hfc.import_run(config_lib.default_config(), imported, os.path.join(GOLDEN, 'gpt2'))
    src_cfg, params = restored(imported, 0)
    corpus_dir = testing.small_corpus()[0]
    tok_dir = os.path.join(tempfile.mkdtemp(), 'tok')
    # The imported run's own copy of the source's tokenizer.json.
    tok_lib.use_hf(os.path.join(imported, hfc.TOKENIZER), src_cfg.model.vocab_size, corpus_dir,
                   tok_dir)
    cfg = config_lib.replace(src_cfg, **{
        'data.source': 'corpus', 'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
        'data.languages': testing.SMALL_LANGUAGES, 'data.read_threads': 1, 'data.prefetch': 2,
        'data.seq_len': 32, 'train.init_from': imported, 'train.steps': 3,
        'train.batch_size': 8, 'train.log_every': 1, 'train.warmup_steps': 1,
        'train.peak_flops': 1e11, 'checkpoint.every_steps': 3})
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    metrics = RunDir(workdir).metrics()
    self.assertEqual(len(metrics), 3)
    # Step 0's loss is the imported model's loss on the run's first batch.
    spec, _ = data_lib.split_settings(cfg, 'train')
    source = pipeline.CorpusSource(corpus_dir, tok_dir, cfg.data.languages, spec, 8, 32,
                                   cfg.seed, read_threads=1, prefetch=0,
                                   vocab_size=cfg.model.vocab_size)
    batch = next(source)
    source.close()
    self.assertIn(batch_lib.TARGET_MASK, batch)
    model = model_lib.build_model(cfg.model)
    sums = losses.loss_sums(model, jax.device_get(params), batch, len(cfg.data.languages))
    direct = float(sums['loss_sum'] / sums['count'])
    self.assertEqual(int(sums['count']), int(batch[batch_lib.TARGET_MASK].sum()))
    self.assertAlmostEqual(metrics[0]['loss'], direct, places=4)
    self.assertTrue(np.isfinite([m['loss'] for m in metrics]).all())


if __name__ == '__main__':
  absltest.main()
