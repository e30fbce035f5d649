"""corpus.runner=beam: the local builder's corpus, byte for byte, on Beam's DirectRunner with 1
and 2 workers (a source tree, an archive, a Parquet/JSON Lines dataset, a 'remote' dataset read
through a Beam filesystem); one line for bad options, paths and workers; launch/corpus_beam.sh."""

from tests import testing  # noqa: F401  (first: fake devices)

import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from absl.testing import absltest
from apache_beam.io import filesystem as beam_fs, localfilesystem

from babel_jax import config as config_lib
from babel_jax.data import beam_build, corpus, dedup, manifest as manifest_lib
from babel_jax.errors import ConfigError, CorpusError, SourceError
from tests.corpus_test import _fixture_tree
from tests.shards_test import _dataset, _py

_TEST_ROOT: list[str] = []  # the folder the 'babeltest://' filesystem serves


class _TestFileSystem(localfilesystem.LocalFileSystem):
  """babeltest://x -> <_TEST_ROOT>/x: a remote filesystem for Beam without a network (Beam
  finds FileSystem subclasses by scheme; in-process runners only)."""

  @classmethod
  def scheme(cls):
    return 'babeltest'

  def _local(self, url):
    return os.path.join(_TEST_ROOT[0], url[len('babeltest://'):])

  def match(self, patterns, limits=None):
    out = []
    for p in patterns:
      found = super().match([self._local(p)])[0].metadata_list
      out.append(beam_fs.MatchResult(p, [beam_fs.FileMetadata(
          'babeltest://' + os.path.relpath(m.path, _TEST_ROOT[0]), m.size_in_bytes)
          for m in found]))
    return out

  def open(self, path, mime_type='application/octet-stream',
           compression_type=beam_fs.CompressionTypes.AUTO):
    return super().open(self._local(path), mime_type, compression_type)


def _config(paths, **overrides):
  return config_lib.Corpus(**{'sources': (), 'paths': paths, 'val_fraction': 0.3, **overrides})


def _beam(paths, workers, **overrides):
  return _config(paths, runner='beam', workers=workers, **overrides)


class BeamCorpusTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.tree = os.path.join(cls.tmp, 'tree')
    _fixture_tree(cls.tree)
    cls.archive = os.path.join(cls.tmp, 'tree.tar.gz')
    with tarfile.open(cls.archive, 'w:gz') as tf:
      tf.add(cls.tree, arcname='tree')
    cls.ds = os.path.join(cls.tmp, 'ds')
    _dataset(cls.ds)
    _TEST_ROOT[:] = [cls.tmp]

  def _same_corpus(self, name, local_cfg, beam_cfgs):
    """Builds with every config; the manifests agree but for how they were built."""
    local = corpus.build_corpus(local_cfg, os.path.join(self.tmp, f'{name}-local'))
    for i, cfg in enumerate(beam_cfgs):
      out = os.path.join(self.tmp, f'{name}-beam-{i}')
      m = corpus.build_corpus(cfg, out)
      self.assertEqual(m['content_hash'], local['content_hash'], (name, i))
      for key in ('languages', 'filtered', 'files_read', 'bytes_read', 'settings', 'sources'):
        self.assertEqual(m[key], local[key], (name, i, key))
      self.assertEqual((m['runner'], local['runner']), ('beam', 'local'))
      self.assertEqual(manifest_lib.load(out)['content_hash'], local['content_hash'])
    return local

  def test_source_tree_same_hash_with_1_and_2_workers(self):
    paths = (self.tree,)
    local = self._same_corpus('tree', _config(paths), [_beam(paths, 1), _beam(paths, 2)])
    langs = {k: (v['files']['train'], v['files']['validation'])
             for k, v in local['languages'].items()}
    self.assertEqual(langs, {'python': (9, 4)})
    f = local['filtered']
    self.assertEqual((f['exact_duplicate'], f['near_duplicate'], f['too_small'],
                      f['binary_or_not_utf8'], f['generated_or_minified']), (1, 1, 1, 2, 2))

  def test_archive_same_hash_under_a_byte_budget(self):
    paths = (self.archive,)
    local = self._same_corpus('archive', _config(paths, max_bytes_per_language=4000),
                              [_beam(paths, 1, max_bytes_per_language=4000),
                               _beam(paths, 2, max_bytes_per_language=4000)])
    self.assertGreater(local['filtered']['over_cap'], 0)
    python = local['languages']['python']
    self.assertLessEqual(python['bytes']['train'] + python['bytes']['validation'], 4000)

  def test_dataset_same_hash_under_a_file_budget(self):
    paths = (self.ds,)
    local = self._same_corpus('dataset', _config(paths, max_files_per_language=6),
                              [_beam(paths, 1, max_files_per_language=6),
                               _beam(paths, 2, max_files_per_language=6)])
    self.assertEqual(sorted(local['languages']), ['cpp', 'csharp', 'go', 'python'])
    python = local['languages']['python']['files']
    # 6 within the budget (the 6 smallest keys), then the near-duplicate among them dropped.
    self.assertEqual(python['train'] + python['validation'], 5)
    self.assertEqual({k: v for k, v in local['filtered'].items() if v},
                     {'too_small': 1, 'vendored_or_fixture': 1, 'exact_duplicate': 1,
                      'near_duplicate': 1, 'over_cap': 8, 'not_code': 1})

  def test_remote_dataset_read_through_a_beam_filesystem(self):
    local = corpus.build_corpus(_config((self.ds,)), os.path.join(self.tmp, 'remote-ref'))
    m = corpus.build_corpus(_beam(('babeltest://ds/',), 1), os.path.join(self.tmp, 'remote'))
    self.assertEqual(m['content_hash'], local['content_hash'])
    self.assertEqual(m['filtered'], local['filtered'])
    with self.assertRaisesRegex(SourceError, 'only corpus.runner=beam'):
      corpus.build_corpus(_config(('babeltest://ds/',)), os.path.join(self.tmp, 'r2'))

  def test_near_dedup_decision_equals_the_local_one(self):
    """On a graph with many collisions, Beam's per-language LSH step drops exactly the rows
    dedup.near_duplicates drops (keys in priority order stand for the rows)."""
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 40, size=(300, 4)).astype(np.uint64)
    expected = dedup.near_duplicates(bands)
    buckets = collections.defaultdict(list)
    for row in range(len(bands)):
      for i, v in enumerate(bands[row].tolist()):
        buckets[('python', i, v)].append((row,))
    shared = [x for group in buckets.items() for x in beam_build.shared_bucket(group)]
    out = list(beam_build.near_drops(('python', [b for _, b in shared])))
    dropped = sorted(key[1][0] for key, _ in out[1:])
    self.assertEqual(dropped, np.flatnonzero(expected).tolist())
    self.assertEqual(out[0].value, {'near_duplicate': int(expected.sum())})
    self.assertGreater(expected.sum(), 50)
    # Greedy, not connected components: in a chain A~B~C, C stays.
    chain = dedup.drop_in_order(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), 3, 2)
    self.assertEqual(chain.tolist(), [False, True, False])

  def test_bad_options_and_remote_paths_are_one_line(self):
    cases = [(('bogus=1',), ConfigError, "names 'bogus'"),
             (('direct_running_mode=nope',), ConfigError, 'invalid choice'),
             (('runner=NoSuchRunner',), ConfigError, 'NoSuchRunner'),
             (('direct_num_workers=x',), ConfigError, 'invalid int')]
    for opts, kind, words in cases:
      with self.assertRaisesRegex(kind, words) as e:
        corpus.build_corpus(_beam((self.tree,), 1, beam_options=opts),
                            os.path.join(self.tmp, 'bad'))
      self.assertNotIn('\n', str(e.exception))
    with self.assertRaisesRegex(SourceError, "gs://babel-no-such-bucket/x.parquet.*cannot be "
                                "read through Beam") as e:
      corpus.build_corpus(_beam(('gs://babel-no-such-bucket/x.parquet',), 1),
                          os.path.join(self.tmp, 'bad'))
    self.assertNotIn('\n', str(e.exception))
    with self.assertRaisesRegex(ConfigError, 'KEY=VALUE'):
      config_lib.validate(config_lib.replace(
          testing.config(), **{'corpus.beam_options': ('--runner=x',)}))
    self.assertFalse([p for p in os.listdir(self.tmp) if p.startswith('bad')])

  def test_a_worker_failing_mid_build_leaves_no_corpus(self):
    ds = os.path.join(self.tmp, 'ds-cut')
    shutil.copytree(self.ds, ds)
    with open(os.path.join(ds, 'zz-cut.jsonl'), 'w') as f:  # line 2 is cut: fails when scanned
      f.write(json.dumps({'content': _py(1), 'lang': 'Python'}) + '\n' +
              json.dumps({'content': _py(2), 'lang': 'Python'})[:40] + '\n')
    out = os.path.join(self.tmp, 'cut')
    with self.assertRaisesRegex(CorpusError, r'Beam pipeline failed .*zz-cut\.jsonl line 2.*'
                                'nothing written') as e:
      corpus.build_corpus(_beam((ds,), 2), out)
    self.assertNotIn('\n', str(e.exception))
    self.assertFalse([p for p in os.listdir(self.tmp) if p.startswith('cut')])
    log = re.search(r'worker output: (\S+)\)$', str(e.exception)).group(1)
    with open(log) as f:  # the workers' traceback is there, kept for the user
      self.assertIn('zz-cut.jsonl', f.read())
    os.remove(log)
    # What a user sees: one line on stderr, the worker processes' output in a log file.
    r = subprocess.run(
        [sys.executable, '-m', 'babel_jax.main', f'--config={testing.REPO}/configs/tiny.py',
         f'--workdir={self.tmp}/cli', '--mode=corpus', '--config.corpus.sources=',
         f'--config.corpus.paths={ds}', '--config.corpus.runner=beam',
         '--config.corpus.workers=2'], cwd=testing.REPO, capture_output=True, text=True,
        timeout=240)
    self.assertNotEqual(r.returncode, 0)
    self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
    self.assertRegex(r.stderr, r'^error: the Beam pipeline failed .*zz-cut\.jsonl line 2')
    os.remove(re.search(r'worker output: (\S+)\)', r.stderr).group(1))
    self.assertFalse(os.path.exists(os.path.join(self.tmp, 'cli', 'corpus')))


class LaunchTest(absltest.TestCase):

  def _run(self, *args):
    r = subprocess.run(['bash', os.path.join(testing.REPO, 'launch', 'corpus_beam.sh'), *args],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr

  def test_arguments(self):
    rc, out, _ = self._run('--help')
    self.assertEqual(rc, 0)
    self.assertIn('--temp-location', out)
    rc, _, err = self._run('--runner', 'dataflow', '--project', 'p', '--dry-run')
    self.assertEqual((rc, err), (2, 'corpus_beam.sh: --runner dataflow needs --region '
                                    '--temp-location\n'))
    rc, _, err = self._run('--dry-run')
    self.assertEqual(rc, 2)
    self.assertIn('--runner is required', err)
    rc, _, err = self._run('--runner', 'spark', '--dry-run')
    self.assertEqual(rc, 2)
    rc, out, _ = self._run('--runner', 'dataflow', '--project', 'p', '--region', 'europe-west4',
                           '--temp-location', 'gs://b/tmp', '--num-workers', '16', '--dry-run',
                           '--', '--config.corpus.max_bytes_per_language=1e9')
    self.assertEqual(rc, 0, out)
    line = out.replace('\\,', ',')
    self.assertIn('--mode corpus --config.corpus.runner=beam --config.corpus.beam_options='
                  'runner=DataflowRunner,project=p,region=europe-west4,temp_location=gs://b/tmp,'
                  'num_workers=16,extra_packages=dist/', line)
    self.assertTrue(line.rstrip().endswith('--config.corpus.max_bytes_per_language=1e9'))
    rc, out, _ = self._run('--runner', 'flink', '--flink-master', 'jm:8081', '--parallelism',
                           '8', '--dry-run')
    self.assertEqual(rc, 0)
    self.assertIn('runner=FlinkRunner,flink_master=jm:8081,environment_type=LOOPBACK,'
                  'parallelism=8', out.replace('\\,', ','))
    # The options the script writes are ones Beam accepts.
    opts = out.replace('\\,', ',').split('beam_options=')[1].split()[0]
    c = config_lib.Corpus(beam_options=tuple(opts.split(',')), runner='beam')
    self.assertEqual(beam_build.options(c).get_all_options()['flink_master'], 'jm:8081')


if __name__ == '__main__':
  absltest.main()
