"""grain pipeline: batch contract, realised mixture shares, exact resume, hosts, bad input."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import shutil
import tempfile

import numpy as np
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax.data import corpus, pipeline, tokenizer
from babel_jax.errors import DataError, MixtureError
from babel_jax.mixture import spec as mixture_spec
from babel_jax.train import loop
from babel_jax.train import metrics as metrics_lib

LANGS = tuple(testing.SMALL_LANGUAGES.split(','))


def _source(spec=None, batch=8, seq=64, **kw):
  corpus_dir, tok_dir = testing.small_corpus()
  spec = spec or mixture_spec.MixtureSpec({'python': 0.6, 'cpp': 0.3, 'javascript': 0.1})
  kw.setdefault('read_threads', 1)
  return pipeline.CorpusSource(corpus_dir, tok_dir, LANGS, spec, batch, seq, seed=0, **kw)


def _shares(source, batches):
  counts = np.zeros(len(LANGS))
  for _ in range(batches):
    b = next(source)
    counts += [(b['lang_ids'] == i).sum() for i in range(len(LANGS))]
  return counts / counts.sum()


def _same(a, b):
  return all(np.array_equal(a[k], b[k]) for k in a)


class PipelineTest(absltest.TestCase):

  def test_batches_follow_the_contract(self):
    s = _source()
    b = next(s)
    self.assertEqual(sorted(b), sorted(('tokens', 'targets', 'segment_ids', 'positions', 'lang_ids')))
    for v in b.values():
      self.assertEqual((v.shape, v.dtype), ((8, 64), np.int32))
    tok, tgt, seg, pos = b['tokens'], b['targets'], b['segment_ids'], b['positions']
    # Next-token targets inside a document, 0 where the next token belongs to another one.
    inside = seg[:, 1:] == seg[:, :-1]
    np.testing.assert_array_equal(np.where(inside, tgt[:, :-1], 0), np.where(inside, tok[:, 1:], 0))
    self.assertTrue((tgt[:, :-1][~inside] == 0).all())
    starts = np.concatenate([np.ones((8, 1), bool), ~inside], axis=1)
    self.assertTrue((pos[starts] == 0).all())
    self.assertTrue((pos[:, 1:][inside] == pos[:, :-1][inside] + 1).all())
    self.assertTrue(((b['lang_ids'] >= 0) == (seg > 0)).all())
    # Each row holds one language (rows are packed per language, then mixed).
    for row in b['lang_ids']:
      self.assertLen(set(row[row >= 0].tolist()), 1)
    s.close()

  def test_realised_shares_stay_within_one_percent(self):
    for weights in ({'python': 0.6, 'cpp': 0.3, 'javascript': 0.1},
                    {'python': 0.2, 'cpp': 0.0, 'javascript': 0.8}):
      s = _source(mixture_spec.MixtureSpec(weights))
      got = _shares(s, 60)
      np.testing.assert_allclose(got, [weights[lang] for lang in LANGS], atol=0.01)
      s.close()
    spec = mixture_spec.from_dict({'target_tokens': {'python': 3e6, 'cpp': 1e6, 'javascript': 1e6}},
                                  LANGS, 'test')
    self.assertAlmostEqual(spec.weights['python'], 0.6)
    np.testing.assert_allclose(_shares(_source(spec), 60), [0.6, 0.2, 0.2], atol=0.01)

  def test_resume_yields_exactly_the_next_batch(self):
    a = _source()
    for _ in range(23):
      next(a)
    state = json.loads(json.dumps(a.get_state()))  # as stored in the checkpoint
    expected = [next(a) for _ in range(10)]
    b = _source()
    b.set_state(state)
    for want in expected:
      self.assertTrue(_same(next(b), want))

  def test_resume_with_a_new_spec(self):
    a = _source()
    for _ in range(20):
      next(a)
    state = json.loads(json.dumps(a.get_state()))
    new = mixture_spec.MixtureSpec({'python': 0.1, 'cpp': 0.1, 'javascript': 0.8})
    b = _source(new)
    b.set_state(state)
    np.testing.assert_allclose(_shares(b, 40), [0.1, 0.1, 0.8], atol=0.01)

  def test_hosts_read_disjoint_documents(self):
    first = [_source(batch=8, process_index=i, process_count=2) for i in range(2)]
    rows = [np.concatenate([next(s)['tokens'] for _ in range(5)]) for s in first]
    self.assertEqual(rows[0].shape, (20, 64))
    shared = {r.tobytes() for r in rows[0]} & {r.tobytes() for r in rows[1]}
    # Different files can share rows of boilerplate (the C++ headers' GNU licence), so a row
    # both hosts read must be text that two or more documents of the corpus hold.
    corpus_dir, tok_dir = testing.small_corpus()
    m = corpus.load_manifest(corpus_dir)
    docs = [t for lang in LANGS for s in corpus.SPLITS
            for t in corpus.read_texts(corpus_dir, m, lang, s)]
    tok = tokenizer.Tokenizer(os.path.join(tok_dir, tokenizer.MODEL))
    for row in shared:
      text = tok.decode([int(t) for t in np.frombuffer(row, rows[0].dtype) if t])
      self.assertGreater(sum(text in d for d in docs), 1, text)
    with self.assertRaisesRegex(DataError, 'processes'):
      _source(batch=7, process_count=2)

  def test_bad_input_fails_before_training(self):
    corpus_dir, tok_dir = testing.small_corpus()
    spec = mixture_spec.MixtureSpec({'python': 1.0, 'go': 0.0})
    with self.assertRaisesRegex(DataError, r"\['go'\].*does not hold"):
      pipeline.CorpusSource(corpus_dir, tok_dir, ('python', 'go'), spec, 8, 64, 0)
    for weights, pattern in (({'python': -1, 'cpp': 1, 'javascript': 1}, 'negative'),
                             ({'python': 0, 'cpp': 0, 'javascript': 0}, 'all zero'),
                             ({'python': 1, 'cpp': 1}, r"no weight for \['javascript'\]"),
                             ({'python': 1, 'cpp': 1, 'javascript': 1, 'rust': 1}, 'rust')):
      with self.assertRaisesRegex(MixtureError, pattern):
        mixture_spec.from_dict({'weights': weights}, LANGS, 'spec')
    path = os.path.join(tempfile.mkdtemp(), 'mix.json')
    with open(path, 'w') as f:
      f.write('{"weights": {"python": 1,')
    cfg = testing.corpus_config(**{'data.mixture': path})
    with self.assertRaisesRegex(MixtureError, 'mix.json'):
      mixture_spec.from_config(cfg)
    # A language without data, and a manifest naming a missing shard.
    broken = os.path.join(tempfile.mkdtemp(), 'corpus')
    shutil.copytree(corpus_dir, broken)
    m = corpus.load_manifest(broken)
    m['languages']['cpp']['files']['train'] = 0
    m['languages']['cpp']['shards']['train'] = []
    with open(os.path.join(broken, corpus.MANIFEST), 'w') as f:
      json.dump(m, f)
    with self.assertRaisesRegex(DataError, 'cpp has weight .* no train files'):
      pipeline.CorpusSource(broken, tok_dir, LANGS, _source().spec, 8, 64, 0)
    os.remove(os.path.join(broken, m['languages']['python']['shards']['train'][0]))
    with self.assertRaisesRegex(DataError, 'names shard .*python.* missing'):
      pipeline.CorpusSource(broken, tok_dir, LANGS, _source().spec, 8, 64, 0)
    with self.assertRaisesRegex(DataError, 'model.vocab_size=300'):
      pipeline.CorpusSource(corpus_dir, tok_dir, LANGS, _source().spec, 8, 64, 0, vocab_size=300)


class CorpusTrainingTest(absltest.TestCase):

  def test_train_on_the_corpus_stop_and_resume_match(self):
    corpus_dir, tok_dir = testing.small_corpus()
    cfg = testing.corpus_config(**{'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
                                   'train.steps': 8, 'train.log_every': 1})
    straight = tempfile.mkdtemp()
    loop.train(cfg, straight)
    resumed = tempfile.mkdtemp()
    stopping = config_lib.replace(cfg, **{'train.stop_after': 4})
    self.assertEqual(loop.train(stopping, resumed)['status'], 'stop_after')
    loop.train(cfg, resumed)
    a = [m['loss'] for m in metrics_lib.read_metrics(straight)]
    b = [m['loss'] for m in metrics_lib.read_metrics(resumed)]
    self.assertLen(a, 8)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    with open(os.path.join(resumed, 'run_info.json')) as f:
      info = json.load(f)['data']
    self.assertEqual(info['corpus_hash'], corpus.load_manifest(corpus_dir)['content_hash'])
    self.assertEqual(info['tokenizer_dir'], tok_dir)
    with open(os.path.join(resumed, 'mixture.json')) as f:
      self.assertAlmostEqual(sum(json.load(f)['weights'].values()), 1.0)
    self.assertEqual(data_lib.corpus_dir(cfg, resumed), corpus_dir)


if __name__ == '__main__':
  absltest.main()
