"""Corpus from dataset shards (Parquet, JSON Lines), parallel build, token budgets, dedup switch."""

from tests import testing  # noqa: F401  (first: fake devices)

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sentencepiece as spm
import zstandard

from babel_jax import config as config_lib
from babel_jax.config import validate
from babel_jax.data import corpus, dedup, manifest as manifest_lib, scan, tokenizer, workers
from babel_jax.errors import ConfigError, DataError
from tests.corpus_test import _fixture_tree


def _py(i):
  return (f'def compute_{i}(values):\n    """Sums the values scaled by {i}."""\n'
          f'    total = {i}\n    for v in values:\n        total += v * {i * 3 + 1}\n'
          f'    return total\n\n\nclass Holder{i}:\n    limit = {i * 17}\n\n'
          f'    def check(self, value):\n' +
          ''.join(f'        if value > self.limit + {i * 5 + j}:\n            return {j}\n'
                  for j in range(8)) + '        return None\n')


def _go(i):
  return (f'package shard\n\n// Add{i} adds {i} to a.\nfunc Add{i}(a int) int {{\n'
          f'\treturn a + {i * 7}\n}}\n')


def _cpp(i):
  return (f'#include <vector>\n\n// Scales x by {i + 2}.\nint twice_{i}(int x) {{\n'
          f'  return x * {i + 2};\n}}\n')


def _cs(i):
  return (f'namespace Shards {{\n  public static class C{i} {{\n'
          f'    public static int Get() {{ return {i * 11}; }}\n  }}\n}}\n')


def _near(text):
  return text.replace('Sums the values', 'Adds up the values')


def _zst(path, lines):
  with open(path, 'wb') as f:
    f.write(zstandard.ZstdCompressor().compress(''.join(lines).encode()))


def _dataset(root):
  """A folder in The Stack v1 layout plus JSON Lines variants; returns {language: texts kept}."""
  os.makedirs(root)
  py = [_py(i) for i in range(8)]
  go, cpp = [_go(i) for i in range(4)], [_cpp(i) for i in range(3)]
  rows = ([(t, 'Python', 'py', f'repo/pkg/m{i}.py') for i, t in enumerate(py)] +
          [(t, 'Go', 'go', f'repo/g{i}.go') for i, t in enumerate(go)] +
          [(t, 'C++', 'cc', f'repo/c{i}.cc') for i, t in enumerate(cpp)] +
          [('# Title\n\nSome prose about the project. ' * 4, 'Markdown', 'md', 'README.md'),
           (_py(90), 'Python', 'py', 'repo/vendor/dep.py'),
           ('x = 1\n', 'Python', 'py', 'repo/tiny.py')])
  table = pa.table({name: [r[i] for r in rows] for i, name in
                    enumerate(('content', 'lang', 'ext', 'max_stars_repo_path'))})
  table = table.append_column('max_stars_count', pa.array(range(len(rows))))
  pq.write_table(table, os.path.join(root, 'data-00000.parquet'), row_group_size=4)
  more_py = [_py(i) for i in range(20, 24)]
  with open(os.path.join(root, 'extra.jsonl'), 'w') as f:
    for t in more_py + [py[2], _near(py[5])]:  # an exact and a near duplicate
      f.write(json.dumps({'text': t, 'language': 'python'}) + '\n')
  more_go = [_go(i) for i in range(30, 33)]
  with gzip.open(os.path.join(root, 'go.jsonl.gz'), 'wt') as f:
    for i, t in enumerate(more_go):
      f.write(json.dumps({'content': t, 'path': f'x/y{i}.go'}) + '\n')
  cs = [_cs(i) for i in range(3)]
  _zst(os.path.join(root, 'cs.jsonl.zst'), [json.dumps({'content': t, 'lang': 'C#'}) + '\n'
                                           for t in cs])
  with open(os.path.join(root, 'README.md'), 'w') as f:
    f.write('A dataset card.\n')
  return {'python': py + more_py, 'go': go + more_go, 'cpp': cpp, 'csharp': cs}


def _config(paths, **overrides):
  return config_lib.Corpus(**{'sources': (), 'paths': paths, 'val_fraction': 0.3, **overrides})


def _texts(out, m, lang):
  return [t for s in manifest_lib.SPLITS for t in manifest_lib.read_texts(out, m, lang, s)]


def _records(out, m, lang):
  from array_record.python import array_record_module as array_record
  recs = []
  for s in manifest_lib.SPLITS:
    for rel in m['languages'][lang]['shards'][s]:
      r = array_record.ArrayRecordReader(os.path.join(out, rel))
      recs += [json.loads(r.read([i])[0]) for i in range(r.num_records())]
      r.close()
  return recs


def _key(text):
  return hashlib.sha256(text.encode()).hexdigest()[8:24]


class DatasetSourceTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()
    self.ds = os.path.join(self.tmp, 'ds')
    self.expected = _dataset(self.ds)

  def test_folder_of_parquet_and_jsonl_shards(self):
    out = os.path.join(self.tmp, 'out')
    log = io.StringIO()
    with mock.patch.object(workers, 'INTERVAL_S', 0.0), contextlib.redirect_stdout(log):
      m = corpus.build_corpus(_config(self.ds), out)
    self.assertEqual(sorted(m['languages']), ['cpp', 'csharp', 'go', 'python'])
    for lang, texts in self.expected.items():
      self.assertCountEqual(_texts(out, m, lang), texts, lang)
    f = m['filtered']
    self.assertEqual((f['exact_duplicate'], f['near_duplicate'], f['not_code'],
                      f['vendored_or_fixture'], f['too_small']), (1, 1, 1, 1, 1))
    self.assertEqual(m['files_read'], 18 + 6 + 3 + 3)  # rows; README.md is not a shard
    paths = {r['path'] for r in _records(out, m, 'python')}
    self.assertIn('repo/pkg/m0.py', paths)  # the Stack's path column
    self.assertIn('extra.jsonl:1', paths)  # no path column: shard and line
    self.assertEqual({r['path'] for r in _records(out, m, 'go')} & {'x/y0.go'}, {'x/y0.go'})
    # Progress: throughput and an ETA while reading, then a closing line per phase.
    self.assertRegex(log.getvalue(), r'corpus: read .*files/s.*MB/s.*ETA')
    self.assertRegex(log.getvalue(), r'corpus: minhash 100% .* done in')

  def test_single_shard_files_and_path_language(self):
    out = os.path.join(self.tmp, 'out')
    paths = f'{self.ds}/cs.jsonl.zst,{self.ds}/data-00000.parquet'
    m = corpus.build_corpus(_config(paths, languages='csharp,cpp'), out)
    self.assertCountEqual(_texts(out, m, 'csharp'), self.expected['csharp'])
    self.assertCountEqual(_texts(out, m, 'cpp'), self.expected['cpp'])
    self.assertEqual(m['filtered']['other_language'], 14)  # python and go rows

  def test_a_source_tree_with_a_stray_shard_stays_a_tree(self):
    tree = os.path.join(self.tmp, 'tree')
    _fixture_tree(tree)
    shutil.copy(os.path.join(self.ds, 'cs.jsonl.zst'), os.path.join(tree, 'pkg', 'x.jsonl.zst'))
    m = corpus.build_corpus(_config(tree), os.path.join(self.tmp, 'out'))
    self.assertEqual(sorted(m['languages']), ['python'])  # the shard's C# rows are not read

  def test_truncated_or_incomplete_shards_name_the_file(self):
    bad = os.path.join(self.tmp, 'bad')
    os.makedirs(bad)
    with open(os.path.join(self.ds, 'data-00000.parquet'), 'rb') as f:
      blob = f.read()
    with open(os.path.join(self.tmp, 'ds', 'go.jsonl.gz'), 'rb') as f:
      gz = f.read()
    cases = {
        'cut.parquet': (blob[:len(blob) // 2], ['truncated or corrupt']),
        'cut.jsonl.gz': (gz[:len(gz) - 12], ['truncated or corrupt']),
        'cut.jsonl.zst': (zstandard.ZstdCompressor().compress(
            (json.dumps({'content': _py(1), 'lang': 'Python'}) + '\n').encode() * 50)[:-9],
                          ['truncated']),
        'cut.jsonl': (json.dumps({'content': _py(1), 'lang': 'Python'}).encode() + b'\n' +
                      json.dumps({'content': _py(2), 'lang': 'Python'}).encode()[:40],
                      ['line 2', 'truncated']),
        'nocontent.parquet': (None, ['content', 'code']),
        'nofield.jsonl': ((json.dumps({'content': _py(1), 'lang': 'Python'}) + '\n' +
                           json.dumps({'body': _py(2), 'lang': 'Python'}) + '\n').encode(),
                          ['line 2', 'content']),
    }
    for name, (data, words) in cases.items():
      path = os.path.join(bad, name)
      if data is None:
        pq.write_table(pa.table({'code': [_py(1)], 'lang': ['Python']}), path)
      else:
        with open(path, 'wb') as f:
          f.write(data)
      with self.assertRaises(DataError, msg=name) as e:
        corpus.build_corpus(_config(path), os.path.join(self.tmp, f'out-{name}'))
      message = str(e.exception)
      self.assertIn(path, message, name)
      self.assertNotIn('\n', message, name)
      for word in words:
        self.assertIn(word, message, name)
      self.assertFalse(os.path.exists(os.path.join(self.tmp, f'out-{name}')), name)
    # What a user sees: one line on stderr, no traceback.
    r = subprocess.run(
        [sys.executable, '-m', 'babel_jax.main', f'--config={testing.REPO}/configs/tiny.py',
         f'--workdir={self.tmp}/run', '--mode=corpus', '--config.corpus.sources=',
         f'--config.corpus.paths={bad}/cut.parquet'],
        cwd=testing.REPO, capture_output=True, text=True, timeout=120)
    self.assertNotEqual(r.returncode, 0)
    self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
    self.assertRegex(r.stderr, r'^error: .*cut\.parquet.*truncated or corrupt')

  def test_column_mapping(self):
    root = os.path.join(self.tmp, 'mapped')
    os.makedirs(root)
    texts = [_py(i) for i in range(40, 44)] + [_go(i) for i in range(40, 42)]
    langs = ['py3'] * 4 + ['golang'] * 2
    files = [f'src/a{i}.py' for i in range(4)] + ['b0.go', 'b1.go']
    pq.write_table(pa.table({'code': texts, 'language_name': langs, 'file': files}),
                   os.path.join(root, 'part.parquet'))
    cfg = _config(root, columns='content=code,path=file')
    out = os.path.join(self.tmp, 'out')
    m = corpus.build_corpus(cfg, out)  # 'py3' is no language name we know: the path decides
    self.assertCountEqual(_texts(out, m, 'python'), texts[:4])
    self.assertCountEqual(_texts(out, m, 'go'), texts[4:])
    self.assertEqual(sorted(r['path'] for r in _records(out, m, 'go')), ['b0.go', 'b1.go'])
    with self.assertRaisesRegex(DataError, r'part\.parquet: no column .body'):
      corpus.build_corpus(_config(root, columns='content=body'), os.path.join(self.tmp, 'o2'))
    with self.assertRaisesRegex(DataError, r'part\.parquet: no language column'):
      corpus.build_corpus(_config(root, columns='content=code'), os.path.join(self.tmp, 'o3'))
    for bad in ('code', 'text=code', 'content=a,content=b'):
      with self.assertRaisesRegex(ConfigError, 'corpus.columns'):
        validate(_whole_config(columns=bad))


def _whole_config(**corpus_fields):
  return config_lib.replace(config_lib.Config(), corpus=corpus_fields)


class ParallelBuildTest(absltest.TestCase):

  def test_one_and_two_workers_write_the_same_bytes(self):
    tmp = tempfile.mkdtemp()
    tree, ds = os.path.join(tmp, 'tree'), os.path.join(tmp, 'ds')
    _fixture_tree(tree)
    _dataset(ds)
    archives = os.path.join(tmp, 'archives')
    paths = f'{tree},{archives}/go.tar.gz,{archives}/go.zip,{ds}'
    manifests = []
    # Small units, so that two workers really interleave: 3 files or 1 row group a unit.
    with mock.patch.object(scan, 'UNIT_FILES', 3), mock.patch.object(scan, 'PARQUET_UNIT_BYTES', 1):
      for n in (1, 2):
        out = os.path.join(tmp, f'out{n}')
        manifests.append(corpus.build_corpus(_config(paths, workers=n), out))
    one, two = manifests
    self.assertEqual(one['content_hash'], two['content_hash'])
    self.assertEqual((one['workers'], two['workers']), (1, 2))
    for key in ('languages', 'filtered', 'sources', 'files_read', 'bytes_read', 'settings'):
      self.assertEqual(one[key], two[key], key)
    self.assertEqual(one['filtered']['exact_duplicate'], 2)  # tree copy, jsonl copy
    # A corpus built with 1 worker is reused when asked again with 2.
    again = corpus.build_corpus(_config(paths, workers=2), os.path.join(tmp, 'out1'))
    self.assertEqual(again['content_hash'], one['content_hash'])


class BudgetAndDedupTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()
    self.ds = os.path.join(self.tmp, 'ds')
    self.expected = _dataset(self.ds)
    self.tree = os.path.join(self.tmp, 'tree')
    _fixture_tree(self.tree, n_py=20)

  def _paths(self, reverse=False):
    parts = [self.ds, self.tree]
    return ','.join(reversed(parts) if reverse else parts)

  def test_token_budgets_are_a_hash_sample(self):
    full_out = os.path.join(self.tmp, 'full')
    full = corpus.build_corpus(_config(self._paths(), dedup='exact'), full_out)
    everything = {lang: sorted(_texts(full_out, full, lang), key=_key) for lang in
                  full['languages']}
    budget, py_budget = 50, 1500
    cfg = _config(self._paths(), dedup='exact', max_tokens_per_language=float(budget),
                  max_tokens_by_language=f'python={py_budget:.1e}')
    out = os.path.join(self.tmp, 'capped')
    m = corpus.build_corpus(cfg, out)
    self.assertEqual(m['token_count'], {'method': 'estimate', 'bytes_per_token': 3.5})
    for lang, texts in everything.items():
      limit = py_budget if lang == 'python' else budget
      kept, total = [], 0
      for t in texts:  # the smallest keys while the running token estimate fits
        total += math.ceil(len(t.encode()) / 3.5)
        if total > limit and kept:
          break
        kept.append(t)
      self.assertLess(len(kept), len(texts), lang)  # the budget bites
      self.assertEqual(sorted(_texts(out, m, lang), key=_key), kept, lang)
      tok = m['languages'][lang]['tokens']
      self.assertEqual(tok['train'] + tok['validation'],
                       sum(math.ceil(len(t.encode()) / 3.5) for t in kept), lang)
    self.assertGreater(m['filtered']['over_cap'], 0)
    reordered = _config(self._paths(reverse=True), dedup='exact',
                        max_tokens_per_language=float(budget),
                        max_tokens_by_language=f'python={py_budget:.1e}')
    other = corpus.build_corpus(reordered, os.path.join(self.tmp, 'reversed'))
    self.assertEqual(other['content_hash'], m['content_hash'])
    with self.assertRaisesRegex(ConfigError, 'max_tokens_by_language'):
      validate(_whole_config(max_tokens_by_language='python=lots'))
    with self.assertRaisesRegex(ConfigError, 'klingon'):
      corpus.build_corpus(_config(self._paths(), max_tokens_by_language='klingon=5'),
                   os.path.join(self.tmp, 'x'))

  def test_tokens_counted_by_a_sentencepiece_model(self):
    model_prefix = os.path.join(self.tmp, 'spm')
    sample = [t for texts in self.expected.values() for t in texts]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sample), model_prefix=model_prefix,
                                   vocab_size=400, model_type='bpe', byte_fallback=True,
                                   character_coverage=1.0, minloglevel=2)
    model = model_prefix + '.model'
    out = os.path.join(self.tmp, 'out')
    m = corpus.build_corpus(_config(self.ds, token_model=model, max_tokens_per_language=2000.0), out)
    self.assertEqual(m['token_count']['method'], 'sentencepiece')
    tok = tokenizer.Tokenizer(model)
    for lang, info in m['languages'].items():
      counted = sum(len(tok.encode(t)) for t in _texts(out, m, lang))
      self.assertEqual(info['tokens']['train'] + info['tokens']['validation'], counted, lang)
      self.assertLessEqual(counted, 2000, lang)
    with self.assertRaisesRegex(DataError, 'corpus.token_model'):
      corpus.build_corpus(_config(self.ds, token_model='/no/such.model'), os.path.join(self.tmp, 'y'))

  def test_dedup_switch(self):
    counts = {}
    for mode in ('exact,near', 'exact', 'near', 'none'):
      m = corpus.build_corpus(_config(self.ds, dedup=mode), os.path.join(self.tmp, mode))
      py = m['languages']['python']['files']
      counts[mode] = (m['filtered']['exact_duplicate'], m['filtered']['near_duplicate'],
                      py['train'] + py['validation'])
    self.assertEqual(counts['exact,near'], (1, 1, 12))
    self.assertEqual(counts['exact'], (1, 0, 13))
    self.assertEqual(counts['near'], (0, 2, 12))  # the exact copy is a near duplicate too
    self.assertEqual(counts['none'], (0, 0, 14))
    with self.assertRaisesRegex(ConfigError, 'corpus.dedup'):
      validate(_whole_config(dedup='fuzzy'))


class BandedLshTest(absltest.TestCase):

  def test_same_decisions_as_an_in_memory_minhash_lsh(self):
    from datasketch import MinHashLSH
    rng = random.Random(0)
    words = [f'w{i}' for i in range(300)]
    docs = []
    for _ in range(25):
      base = [rng.choice(words) for _ in range(120)]
      docs.append(' '.join(base).encode())
      for _ in range(rng.randrange(3)):  # near copies: a few words changed
        edited = list(base)
        for _ in range(rng.randrange(1, 6)):
          edited[rng.randrange(len(edited))] = rng.choice(words)
        docs.append(' '.join(edited).encode())
    rng.shuffle(docs)
    bander = dedup.Bander(0.85, 128)
    lsh = MinHashLSH(threshold=0.85, num_perm=128)
    expected = []
    for i, d in enumerate(docs):
      mh = bander.minhash(d)
      hit = bool(lsh.query(mh))
      if not hit:
        lsh.insert(i, mh)
      expected.append(hit)
    path = os.path.join(tempfile.mkdtemp(), 'bands.npy')
    bands = np.lib.format.open_memmap(path, 'w+', np.uint64, (len(docs), bander.b))
    for i, d in enumerate(docs):
      bands[i] = bander.bands(d)
    dropped = dedup.near_duplicates(bands)
    self.assertEqual(dropped.tolist(), expected)
    self.assertGreater(sum(expected), 5)


if __name__ == '__main__':
  absltest.main()
