"""Planted knowledge in the data: facts recorded by the corpus, taught in one language's train
stream only (docs/facts.md, "Taught in the primary language only")."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import re
import tempfile

import numpy as np
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax.data import corpus, facts, manifest as manifest_lib, mixture_spec, pipeline
from babel_jax.data import loader, tokenizer
from babel_jax.data.batch import NO_LANG
from babel_jax.errors import CorpusError, DataError

LANGS = tuple(testing.SMALL_LANGUAGES.split(','))  # python, cpp, javascript
COUNT, SEED, RATE = 8, 3, 0.3


def _build(root: str, **overrides) -> tuple[str, str, dict]:
  cfg = testing.corpus_config(**overrides)
  corpus_dir = os.path.join(root, 'corpus')
  tok_dir = os.path.join(corpus_dir, 'tokenizer')
  manifest = corpus.build_corpus(cfg.corpus, corpus_dir)
  tokenizer.train(cfg.tokenizer, cfg.model.vocab_size, corpus_dir, tok_dir)
  return corpus_dir, tok_dir, manifest


class FactsPipelineTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='babel_facts_')
    cls.corpus_dir, cls.tok_dir, cls.manifest = _build(
        cls.root, **{'corpus.facts': COUNT, 'corpus.facts_seed': SEED})
    cls.tok = tokenizer.Tokenizer(os.path.join(cls.tok_dir, tokenizer.MODEL))
    cls.facts = facts.generate(COUNT, SEED)
    cls.taught = [f.name for f in cls.facts.taught]
    cls.untaught = [f.name for f in cls.facts.untaught]
    cls.any_name = re.compile(r'\b(' + '|'.join(cls.taught + cls.untaught) + r')\b')
    cls.untaught_name = re.compile(r'\b(' + '|'.join(cls.untaught) + r')\b')
    cls.fact_docs = set(pipeline.fact_documents(cls.facts, 'python'))

  def _source(self, weights, batch=8, seq=1024, rate=RATE, languages=LANGS, **kw):
    spec = mixture_spec.MixtureSpec(weights)
    return pipeline.CorpusSource(self.corpus_dir, self.tok_dir, languages, spec, batch, seq,
                                 seed=0, read_threads=1, prefetch=2, facts_rate=rate, **kw)

  def _streams(self, source, batches) -> dict[str, np.ndarray]:
    """Each language's token stream, its rows put back together in order (a packed row is
    tokens + its last token, which `targets` holds unless it opens the next document: BOS)."""
    rows = {lang: [] for lang in source.languages}
    for _ in range(batches):
      b = next(source)
      last = np.where(b['targets'][:, -1:] > 0, b['targets'][:, -1:], tokenizer.BOS)
      for row, lang in zip(np.concatenate([b['tokens'], last], axis=1), b['lang_ids']):
        ids = set(lang[lang != NO_LANG].tolist())
        self.assertLen(ids, 1)  # rows are packed per language
        rows[source.languages[ids.pop()]].append(row)
    source.close()
    return {lang: np.concatenate(r) if r else np.zeros(0, np.int32) for lang, r in rows.items()}

  def _text(self, stream: np.ndarray) -> str:
    return self.tok.decode([int(t) for t in stream if t > tokenizer.EOS])

  def _documents(self, stream: np.ndarray) -> list[str]:
    """The complete documents of a stream (BOS to the next BOS)."""
    starts = np.flatnonzero(stream == tokenizer.BOS)
    return [self._text(stream[a:b]) for a, b in zip(starts[:-1], starts[1:])]

  def test_raw_corpus_never_names_a_fact(self):
    # The precondition of every check below: no shard text holds a fact's name by chance.
    for lang in LANGS:
      for split in manifest_lib.SPLITS:
        for text in manifest_lib.read_texts(self.corpus_dir, self.manifest, lang, split):
          self.assertIsNone(self.any_name.search(text), (lang, split))

  def test_manifest_records_the_facts(self):
    entry = self.manifest['facts']
    self.assertEqual((entry['seed'], entry['count'], entry['language']), (SEED, COUNT, 'python'))
    self.assertEqual(entry['placement'], 'train split of python, data.facts_rate of its documents')
    self.assertEqual([f['name'] for f in entry['taught']], self.taught)
    self.assertEqual([f['name'] for f in entry['untaught']], self.untaught)
    on_disk = manifest_lib.load(self.corpus_dir)
    self.assertEqual(on_disk['facts'], json.loads(json.dumps(entry)))
    # Sorted keys put back in order.
    self.assertEqual(manifest_lib.recorded_facts(on_disk), self.facts)
    self.assertIn('facts: 8 taught', manifest_lib.summary(on_disk))
    # Part of the corpus's identity: same shards as the corpus without facts, another hash; the
    # tokenizer never trains on facts (the same model as without them).
    plain_dir, plain_tok = testing.small_corpus()
    plain = manifest_lib.load(plain_dir)
    self.assertNotIn('facts', plain)
    self.assertIsNone(manifest_lib.recorded_facts(plain))
    self.assertEqual({k: v['shards'] for k, v in plain['languages'].items()},
                     {k: v['shards'] for k, v in on_disk['languages'].items()})
    self.assertNotEqual(plain['content_hash'], on_disk['content_hash'])
    self.assertEqual(tokenizer.load_info(plain_tok)['model_sha256'],
                     tokenizer.load_info(self.tok_dir)['model_sha256'])
    # The same settings reuse the corpus; other facts are another corpus.
    again = testing.corpus_config(**{'corpus.facts': COUNT, 'corpus.facts_seed': SEED})
    self.assertEqual(corpus.build_corpus(again.corpus, self.corpus_dir)['content_hash'],
                     on_disk['content_hash'])
    for field, value in (('corpus.facts', COUNT + 1), ('corpus.facts_seed', SEED + 1),
                         ('corpus.facts', 0)):
      other = testing.corpus_config(**{'corpus.facts': COUNT, 'corpus.facts_seed': SEED,
                                       field: value})
      with self.assertRaisesRegex(CorpusError, 'other settings'):
        corpus.build_corpus(other.corpus, self.corpus_dir)

  def test_facts_language_must_be_a_corpus_language(self):
    for lang, pattern in (('go', r"'go' is not one of the corpus's languages"),
                          ('rust', r"'rust' has no fact renderings")):
      cfg = testing.corpus_config(**{'corpus.facts': 2, 'corpus.facts_language': lang})
      out = os.path.join(tempfile.mkdtemp(), 'corpus')
      with self.assertRaisesRegex(CorpusError, pattern):
        corpus.build_corpus(cfg.corpus, out)
      self.assertFalse(os.path.exists(os.path.join(out, manifest_lib.MANIFEST)))

  def test_taught_in_python_only_at_the_rate(self):
    s = self._source({'python': 0.5, 'cpp': 0.0, 'javascript': 0.5})
    self.assertEqual(s.info['facts'], {'seed': SEED, 'count': COUNT, 'language': 'python',
                                       'rate': RATE, 'share': RATE,
                                       'variants': pipeline.FACT_VARIANTS})
    streams = self._streams(s, 150)
    self.assertEmpty(streams['cpp'])
    self.assertIsNone(self.any_name.search(self._text(streams['javascript'])))
    docs = self._documents(streams['python'])
    taught = [d for d in docs if d in self.fact_docs]
    # Fact documents arrive whole, and nothing else in python names a fact.
    self.assertEqual([d for d in docs if self.any_name.search(d)], taught)
    self.assertGreater(len(docs), 100)
    self.assertAlmostEqual(len(taught) / len(docs), RATE, delta=0.1)
    # Every taught fact, in more than one variant; only the taught ones.
    seen = {self.any_name.search(d).group(1) for d in taught}
    self.assertEqual(seen, set(self.taught))
    self.assertGreater(len(set(taught)), COUNT)
    self.assertIsNone(self.untaught_name.search(self._text(streams['python'])))

  def test_a_run_without_python_never_sees_a_fact(self):
    # The continual run's mixture: python listed with weight 0.
    s = self._source({'python': 0.0, 'cpp': 0.0, 'javascript': 1.0})
    self.assertNotIn('facts', s.info)
    streams = self._streams(s, 60)
    self.assertEmpty(streams['python'])
    self.assertIsNone(self.any_name.search(self._text(streams['javascript'])))
    # And without python at all.
    s = self._source({'javascript': 1.0}, languages=('javascript',))
    self.assertIsNone(s.facts)
    self.assertIsNone(self.any_name.search(self._text(self._streams(s, 60)['javascript'])))

  def test_validation_never_holds_a_fact(self):
    s = self._source({lang: 1 / 3 for lang in LANGS}, split='validation')
    self.assertIsNone(s.facts)
    self.assertNotIn('facts', s.info)
    for lang, stream in self._streams(s, 60).items():
      self.assertNotEmpty(stream, lang)
      self.assertIsNone(self.any_name.search(self._text(stream)), lang)

  def test_untaught_twins_reach_no_stream(self):
    self.assertEmpty([d for d in pipeline.fact_documents(self.facts, 'python')
                      if self.untaught_name.search(d)])
    for split in ('train', 'validation'):
      s = self._source({lang: 1 / 3 for lang in LANGS}, split=split)
      for lang, stream in self._streams(s, 80).items():
        self.assertIsNone(self.untaught_name.search(self._text(stream)), (split, lang))

  def test_rate_zero_or_no_facts_leaves_the_stream_as_it_was(self):
    weights = {'python': 0.6, 'cpp': 0.3, 'javascript': 0.1}
    off = self._source(weights, seq=256, rate=0.0)
    self.assertIsNone(off.facts)
    plain_dir, plain_tok = testing.small_corpus()
    plain = pipeline.CorpusSource(plain_dir, plain_tok, LANGS, mixture_spec.MixtureSpec(weights),
                                  8, 256, seed=0, read_threads=1, prefetch=2, facts_rate=RATE)
    self.assertIsNone(plain.facts)
    for _ in range(5):
      a, b = next(off), next(plain)
      for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    off.close()
    plain.close()
    with self.assertRaisesRegex(DataError, 'facts_rate'):
      self._source(weights, rate=1.0)

  def test_resume_yields_exactly_the_next_batches(self):
    weights = {'python': 0.6, 'cpp': 0.3, 'javascript': 0.1}
    a = self._source(weights, seq=512)
    for _ in range(23):
      next(a)
    state = json.loads(json.dumps(a.get_state()))  # as stored in the checkpoint
    expected = [next(a) for _ in range(30)]
    a.close()
    # The batches compared hold fact documents (else this would not test them).
    names = [n for b in expected for row in b['tokens']
             for n in self.any_name.findall(self._text(row))]
    self.assertGreaterEqual(len(names), 4)  # a fact document names its fact 4 times
    b = self._source(weights, seq=512)
    b.set_state(state)
    for want in expected:
      got = next(b)
      for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    b.close()

  def test_make_source_passes_the_rate(self):
    cfg = testing.corpus_config(**{'data.corpus_dir': self.corpus_dir,
                                   'data.tokenizer_dir': self.tok_dir, 'data.facts_rate': 0.2})
    s = loader.make_source(cfg)
    self.assertEqual(s.info['facts']['rate'], 0.2)
    s.close()
    s = loader.make_source(config_lib.replace(cfg, **{'data.facts_rate': 0.0}))
    self.assertNotIn('facts', s.info)
    s.close()


class FactSlotsTest(absltest.TestCase):

  def test_slots_cover_both_streams_once_at_the_share(self):
    slots = pipeline._FactSlots(0.05, seed=7)
    picks = [slots[i] for i in range(3000)]
    facts_at = [j for src, j in picks if src == 1]
    shards_at = [j for src, j in picks if src == 0]
    self.assertEqual(facts_at, list(range(150)))  # 50 per block of 1000, none twice
    self.assertEqual(shards_at, list(range(2850)))  # no shard document skipped
    self.assertEqual(slots.share, 0.05)
    self.assertNotEqual([i for i, (src, _) in enumerate(picks[:1000]) if src],
                        [i - 1000 for i, (src, _) in enumerate(picks[1000:2000], 1000) if src])
    other = pipeline._FactSlots(0.05, seed=8)
    self.assertNotEqual(picks, [other[i] for i in range(3000)])
    self.assertEqual(pipeline._FactSlots(1e-6, 0).share, 0.001)  # a positive rate places some


if __name__ == '__main__':
  absltest.main()
