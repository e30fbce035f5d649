"""`corpus.runner=beam`: the corpus build as an Apache Beam pipeline (docs/beam.md).

The same steps as the local builder, each calling the same functions (scan.read_unit for
languages and filters, scan.index_row for the hashes, dedup for the sample order, the budgets and
the LSH decision, build_rules for records, splits, shard cuts and the content hash), so the
shards and the content hash are the local builder's, byte for byte:

  units (planned here; a remote file is one unit, copied to the worker's disk and read there)
    -> scan: kept documents + counts by reason
    -> exact dedup: GroupByKey on the first 128 bits of the sha256, the earliest copy kept
    -> budgets: per language, (sample key, bytes, tokens) of every document -> the last sample
       key that fits (a side input); documents after it are dropped
    -> near dedup: b band keys a document -> GroupByKey per (language, band, value) -> the
       buckets holding more than one document -> GroupByKey per language -> dedup.drop_in_order
       -> the dropped keys, joined back (CoGroupByKey)
    -> write: per (language, split) the record sizes in sample order -> where each shard starts
       (a side input) -> GroupByKey per shard -> one ArrayRecord file, written and renamed
    -> report: counts and the per-language totals, read by the launching process, which checks
       every shard is there, hashes them and writes the manifest last.

What one worker must hold: a shard's records (corpus.shard_mb), a language's (sample key, sizes)
list (about 100 bytes a document) and a language's near-duplicate candidate graph (the
documents that share an LSH bucket with another, not every document). Apache Beam is imported
only here, and only in functions: the local runner never needs it.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import io as std_io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Iterator, NamedTuple

import numpy as np

from babel_jax import io
from babel_jax.data import build_rules, dedup, scan, sources as sources_lib
from babel_jax.data import shards as shards_lib
from babel_jax.errors import BabelError, ConfigError, CorpusError, SourceError

_POS = {name: i for i, name in enumerate(scan.INDEX.names)}
_GLOB = re.compile(r'[*?\[]')
_REPORT = 'beam-report.json'


class Doc(NamedTuple):
  """A kept document between the pipeline's steps."""
  row: tuple  # its scan.INDEX fields (offset 0: nothing is spilled)
  lang: str
  source: int  # position in the build's source list
  path: str
  data: bytes


def sample_key(doc: Doc) -> tuple:
  """The document's place in the sample order (dedup.SAMPLE_FIELDS): sorting these tuples sorts
  documents as dedup.sample_order sorts index rows."""
  return tuple(doc.row[_POS[f]] for f in dedup.SAMPLE_FIELDS)


# Options ------------------------------------------------------------------------------------

def _import_quietly() -> None:
  """Imports Beam without its import-time warnings (missing cloud clients) reaching stderr, and
  keeps its loggers to errors: the build's own lines say what happens (a failure: one line)."""
  root = logging.getLogger()
  handlers, level = list(root.handlers), root.level
  root.setLevel(logging.ERROR)
  try:
    import apache_beam  # heavy: runner=beam only
  finally:
    root.handlers[:] = handlers
    root.setLevel(level)
  logging.getLogger(apache_beam.__name__).setLevel(logging.ERROR)


def options(c):
  """corpus.beam_options -> PipelineOptions; corpus.workers sets the DirectRunner's workers
  unless the options do. An option Beam does not know or rejects is a one-line ConfigError."""
  _import_quietly()
  from apache_beam.options.pipeline_options import PipelineOptions  # heavy: runner=beam only
  entries = [(k.strip(), sep, v.strip()) for k, sep, v in (e.partition('=') for e in c.beam_options)]
  keys = [k for k, _, _ in entries]
  flags = [f'--{k}={v}' if sep else f'--{k}' for k, sep, v in entries]
  if 'direct_num_workers' not in keys:
    flags.append(f'--direct_num_workers={c.workers}')
  if 'direct_running_mode' not in keys and c.workers > 1:
    flags.append('--direct_running_mode=multi_processing')
  if 'default_sdk_harness_log_level' not in keys:
    flags.append('--default_sdk_harness_log_level=ERROR')  # worker processes: errors only
  err = std_io.StringIO()
  try:
    with contextlib.redirect_stderr(err):
      opts = PipelineOptions(flags)
      known = opts.get_all_options()
  except SystemExit as e:  # argparse: a value outside an option's choices or of the wrong type
    said = [line for line in err.getvalue().splitlines() if 'error:' in line]
    raise ConfigError(f'corpus.beam_options rejected by Beam: '
                      f'{said[-1].split("error:", 1)[1].strip() if said else e}') from None
  unknown = [k for k in keys if k not in known]
  if unknown:
    raise ConfigError(f'corpus.beam_options names {unknown[0]!r}, which is not a Beam pipeline '
                      'option (launch/corpus_beam.sh --help lists the usual ones)')
  _check_runner(known.get('runner') or 'DirectRunner')
  return opts


def _check_runner(name: str) -> None:
  from apache_beam.runners import runner as runner_lib  # heavy: runner=beam only
  try:
    runner_lib.create_runner(name)
  except Exception as e:  # pylint: disable=broad-except  (an unknown name or missing extra)
    raise ConfigError(f'corpus.beam_options runner={name} cannot be used: '
                      f'{_first_line(str(e)) or type(e).__name__}') from None


def _first_line(text: str) -> str:
  return (text.strip().splitlines() or [''])[0].strip()


@contextlib.contextmanager
def _stderr_to(path: str) -> Iterator[None]:
  """File descriptor 2 into a file while the pipeline runs: the DirectRunner's worker processes
  write their logs and tracebacks there, not over the build's one-line error."""
  sys.stderr.flush()
  saved = os.dup(2)
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
  os.dup2(fd, 2)
  os.close(fd)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def failure(e: BaseException, out_dir: str, log: str) -> CorpusError:
  """The one line for a pipeline that failed: the babel_jax error a worker raised, if any
  (found in the exception's chain or, from a worker process, in its text), else Beam's."""
  cause: BaseException | None = e
  while cause is not None and not isinstance(cause, BabelError):
    cause = cause.__cause__ or cause.__context__
  if cause is not None:
    said = _first_line(str(cause))
  else:
    found = re.findall(r'babel_jax\.errors\.(\w+): (.+)', str(e))
    said = f'{found[-1][0]}: {found[-1][1]}' if found else (
        f'{type(e).__name__}: {_first_line(str(e))}')
  said = re.sub(r" \[while running '[^']*'\]", '', said.strip())
  return CorpusError(f'the Beam pipeline failed ({said}); the partial build was removed, '
                     f'nothing written to {out_dir} (worker output: {log})')


# Planning and reading -----------------------------------------------------------------------

def plan(s: scan.Settings) -> list[scan.Unit]:
  """The local builder's units (scan.plan), plus one unit per file of each remote source."""
  units: list[scan.Unit] = []
  for si, src in enumerate(s.sources):
    if sources_lib.is_remote(src.path):
      for url, size, name in _match(src.path):
        units.append(scan.Unit(len(units), si, 'remote', url, name, input_bytes=size))
    else:
      for u in scan.plan([src], s.columns):
        units.append(dataclasses.replace(u, index=len(units), source=si))
  return units


def _readable(path: str) -> bool:
  return shards_lib.is_shard(path) or path.lower().endswith(sources_lib.ARCHIVE_SUFFIXES)


def _match(path: str) -> list[tuple[str, int, str]]:
  """(url, size, name) of a remote archive or dataset shard, or of those under a remote folder
  or glob, sorted; one line naming the path when Beam's filesystems cannot list it."""
  from apache_beam.io.filesystems import FileSystems  # heavy: runner=beam only
  single = _readable(path) and not _GLOB.search(path)
  pattern = path if single or _GLOB.search(path) else path.rstrip('/') + '/**'
  try:
    found = FileSystems.match([pattern])[0].metadata_list
  except Exception as e:  # pylint: disable=broad-except  (BeamIOError, ValueError: no filesystem)
    raise SourceError(f'corpus.paths entry {path!r} cannot be read through Beam\'s filesystems '
                      f'({_first_line(str(e)) or type(e).__name__})') from None
  prefix = '' if single else re.split(r'[*?\[]', pattern)[0].rsplit('/', 1)[0] + '/'
  out = sorted((m.path, m.size_in_bytes, m.path[len(prefix):] if prefix else
                os.path.basename(m.path)) for m in found if _readable(m.path))
  if not out:
    raise SourceError(f'corpus.paths entry {path!r} holds no archive or dataset shard '
                      f'({", ".join(sources_lib.ARCHIVE_SUFFIXES + shards_lib.SUFFIXES)})')
  return out


@contextlib.contextmanager
def _fetched(url: str) -> Iterator[str]:
  """A remote file copied, as stored (not decompressed), to a local temporary file."""
  from apache_beam.io.filesystems import CompressionTypes, FileSystems  # heavy: runner=beam only
  folder = tempfile.mkdtemp(prefix='babel_beam_')
  local = os.path.join(folder, os.path.basename(url))
  try:
    try:
      with FileSystems.open(url, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
          open(local, 'wb') as out:
        shutil.copyfileobj(f, out, 1 << 20)
    except Exception as e:  # pylint: disable=broad-except  (any filesystem's error)
      raise SourceError(f'cannot read {url} ({_first_line(str(e)) or type(e).__name__})') from e
    yield local
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def _parts(unit: scan.Unit, s: scan.Settings) -> Iterator[tuple[scan.Unit, Any]]:
  """(unit, source) pairs to read: the unit itself, or a remote file's local units."""
  if unit.kind != 'remote':
    yield unit, None
    return
  src = s.sources[unit.source]
  with _fetched(unit.path) as local:
    here = dataclasses.replace(src, path=local)
    for part in scan.plan([here], s.columns):
      yield dataclasses.replace(part, name=unit.name if part.kind in ('parquet', 'jsonl')
                                else part.name), here


def scan_unit(unit: scan.Unit, s: scan.Settings):
  """Step: a unit's kept documents, then its counts (tagged 'stats')."""
  from apache_beam import pvalue  # heavy: runner=beam only
  tally = scan.Tally()
  for part, src in _parts(unit, s):
    base = tally.files  # a remote file's items are numbered across its local units
    for item, path, lang, data in scan.read_unit(s, part, tally, src):
      path_bytes = path.encode('utf-8', 'surrogatepass')
      row = scan.index_row(s, data, path_bytes, lang, unit.index, base + item, 0)
      yield Doc(row, lang, unit.source, path, data)
  stats = {**tally.counts, f'seen:{unit.source}': tally.files, 'bytes': tally.nbytes}
  yield pvalue.TaggedOutput('stats', stats)


def sum_stats(parts) -> dict[str, int]:
  total: collections.Counter = collections.Counter()
  for p in parts:
    total.update(p)
  return dict(total)


# Dedup and budgets --------------------------------------------------------------------------

def hash_key(doc: Doc) -> tuple:
  return tuple(doc.row[_POS[f]] for f in dedup.HASH_FIELDS)


def first_copy(group):
  """Step: of the copies of one content hash, the earliest read (dedup.first_copies's rule)."""
  from apache_beam import pvalue  # heavy: runner=beam only
  copies = sorted(group[1], key=lambda d: (d.row[_POS['unit']], d.row[_POS['item']]))
  if len(copies) > 1:
    yield pvalue.TaggedOutput('stats', {'exact_duplicate': len(copies) - 1})
  yield copies[0]


def budget_meta(doc: Doc) -> tuple[str, tuple]:
  return doc.lang, (sample_key(doc), doc.row[_POS['nbytes']], doc.row[_POS['tokens']])


def cutoff(group, budgets: dict[str, dedup.Budget], default: dedup.Budget):
  """Step: a language's (sample key, bytes, tokens) -> (language, the last sample key within
  its budget), by dedup.Budget.take over the documents in sample order."""
  from apache_beam import pvalue  # heavy: runner=beam only
  lang, metas = group[0], sorted(group[1])
  rows = np.array([(m[1], m[2]) for m in metas], dtype=[('nbytes', '<u8'), ('tokens', '<u8')])
  n = budgets.get(lang, default).take(rows)
  yield pvalue.TaggedOutput('stats', {'over_cap': len(metas) - n})
  yield lang, metas[n - 1][0]


def within_budget(doc: Doc, cut: dict[str, tuple]) -> bool:
  return sample_key(doc) <= cut[doc.lang]


def band_keys(doc: Doc, threshold: float, num_perm: int):
  """Step: a document's LSH bucket keys (language, band, hash) -> its sample key."""
  bands = dedup.Bander.get(threshold, num_perm).bands(doc.data)
  key = sample_key(doc)
  for i, value in enumerate(bands.tolist()):
    yield (doc.lang, i, value), key


def shared_bucket(group):
  """Step: a bucket with more than one document -> (language, (band, hash, members))."""
  (lang, band, value), members = group
  members = sorted(members)
  if len(members) > 1:
    yield lang, (band, value, members)


def near_drops(group):
  """Step: a language's candidate graph (its shared buckets) -> ((language, key), True) for
  every document dedup.drop_in_order drops, the local builder's decision on the same graph."""
  from apache_beam import pvalue  # heavy: runner=beam only
  lang, buckets = group[0], sorted(group[1])
  keys = sorted({k for _, _, members in buckets for k in members})
  rank = {k: i for i, k in enumerate(keys)}
  docs = np.array([rank[k] for _, _, members in buckets for k in members], np.int64)
  ids = np.array([b for b, (_, _, members) in enumerate(buckets) for _ in members], np.int64)
  dropped = dedup.drop_in_order(docs, ids, len(keys), len(buckets))
  yield pvalue.TaggedOutput('stats', {'near_duplicate': int(dropped.sum())})
  for i in np.flatnonzero(dropped).tolist():
    yield (lang, keys[i]), True


def keyed(doc: Doc) -> tuple[tuple, Doc]:
  return (doc.lang, sample_key(doc)), doc


def undropped(group):
  _, joined = group
  if not list(joined['drop']):
    yield from joined['doc']


# Shards -------------------------------------------------------------------------------------

class Record(NamedTuple):
  lang: str
  split: str
  key: tuple  # sample key
  data: bytes  # the shard record
  lexical_tokens: int
  nbytes: int
  tokens: int


def to_record(doc: Doc, source_names: tuple[str, ...], val_fraction: float) -> Record:
  split = ('validation' if build_rules.is_validation(doc.row[_POS['d0']], val_fraction)
           else 'train')
  return Record(doc.lang, split, sample_key(doc),
                build_rules.record(doc.data, source_names[doc.source], doc.path),
                build_rules.lexical_tokens(doc.data), doc.row[_POS['nbytes']],
                doc.row[_POS['tokens']])


def record_meta(r: Record):
  return (r.lang, r.split), (r.key, len(r.data), r.lexical_tokens, r.nbytes, r.tokens)


def cut_shards(group, shard_bytes: int):
  """Step: a (language, split)'s record sizes in sample order -> the sample key each shard
  starts at (build_rules.ShardCutter, as the local writer cuts) and the split's totals."""
  (lang, split), metas = group[0], sorted(group[1])
  cutter, firsts = build_rules.ShardCutter(shard_bytes), []
  for key, size, *_ in metas:
    if cutter.place(size)[1]:
      firsts.append(key)
  return (lang, split), {'firsts': firsts, 'files': len(metas),
                         'bytes': sum(m[3] for m in metas),
                         'lexical_tokens': sum(m[2] for m in metas),
                         'tokens': sum(m[4] for m in metas)}


def shard_of(r: Record, cuts: dict[tuple, dict]) -> tuple[tuple, tuple]:
  firsts = cuts[(r.lang, r.split)]['firsts']
  return (r.lang, r.split, bisect.bisect_right(firsts, r.key) - 1), (r.key, r.data)


def write_shard(group, root: str) -> str:
  """Step: one shard's records, in sample order, into <root>/<lang>/<split>-<i>.array_record."""
  (lang, split, i), records = group
  rel = build_rules.shard_name(lang, split, i)
  build_rules.write_shard(root, rel, (data for _, data in sorted(records)))
  return rel


def write_report(parts, spill_dir: str, name: str) -> None:
  io.atomic_write(os.path.join(spill_dir, name), json.dumps(parts))


def split_totals(group) -> list:
  (lang, split), info = group
  return [lang, split, len(info['firsts']), info['files'], info['bytes'],
          info['lexical_tokens'], info['tokens']]


def by_hash(doc: Doc) -> tuple[tuple, Doc]:
  return hash_key(doc), doc


# The pipeline -------------------------------------------------------------------------------

def _pipeline(beam, p, job, units: list[scan.Unit]) -> None:
  """The steps of the module docstring, wired; reports land in the spill folder."""
  s, c = job.settings, job.c
  scanned = (p | 'units' >> beam.Create(units) | 'spread' >> beam.Reshuffle()
             | 'scan' >> beam.FlatMap(scan_unit, s).with_outputs('stats', main='docs'))
  docs, stats = scanned.docs, [scanned.stats]
  if 'exact' in job.modes:
    exact = (docs | 'by hash' >> beam.Map(by_hash) | 'copies' >> beam.GroupByKey()
             | 'first copy' >> beam.FlatMap(first_copy).with_outputs('stats', main='docs'))
    docs, stats = exact.docs, stats + [exact.stats]
  table, default = dict(job.budgets), job.budgets.default_factory()
  if any(b != dedup.Budget() for b in (default, *table.values())):  # else: nothing to cut
    budget = (docs | 'budget meta' >> beam.Map(budget_meta) | 'per language' >> beam.GroupByKey()
              | 'cutoff' >> beam.FlatMap(cutoff, table, default).with_outputs('stats', main='cut'))
    docs = docs | 'within budget' >> beam.Filter(within_budget, beam.pvalue.AsDict(budget.cut))
    stats.append(budget.stats)
  if 'near' in job.modes and c.near_dup_threshold > 0:
    drops = (docs | 'bands' >> beam.FlatMap(band_keys, c.near_dup_threshold, c.minhash_perms)
             | 'buckets' >> beam.GroupByKey() | 'shared' >> beam.FlatMap(shared_bucket)
             | 'graph' >> beam.GroupByKey()
             | 'lsh' >> beam.FlatMap(near_drops).with_outputs('stats', main='drop'))
    stats.append(drops.stats)
    docs = ({'doc': docs | 'keyed' >> beam.Map(keyed), 'drop': drops.drop}
            | 'join' >> beam.CoGroupByKey() | 'kept' >> beam.FlatMap(undropped))
  records = docs | 'record' >> beam.Map(to_record, tuple(src.name for src in s.sources),
                                        c.val_fraction)
  cuts = (records | 'sizes' >> beam.Map(record_meta) | 'per split' >> beam.GroupByKey()
          | 'cut' >> beam.Map(cut_shards, c.shard_mb * 2**20))
  written = (records | 'shard of' >> beam.Map(shard_of, beam.pvalue.AsDict(cuts))
             | 'per shard' >> beam.GroupByKey() | 'write' >> beam.Map(write_shard, job.tmp))
  _ = (cuts | 'totals' >> beam.Map(split_totals) | 'all totals' >> beam.combiners.ToList()
       | 'report totals' >> beam.Map(write_report, s.spill_dir, 'languages.json'))
  _ = (stats | 'all stats' >> beam.Flatten() | 'sum stats' >> beam.CombineGlobally(sum_stats)
       | 'report stats' >> beam.Map(write_report, s.spill_dir, 'stats.json'))
  _ = (written | 'count shards' >> beam.combiners.Count.Globally()
       | 'report shards' >> beam.Map(write_report, s.spill_dir, 'shards.json'))


def build(job, opts):
  """Runs the pipeline for a corpus build (corpus._Job) and reads its reports back: returns
  (languages' manifest entries, counts by reason, files seen per source, bytes read), as the
  local builder does. Every shard a report names must be on disk."""
  import apache_beam as beam  # heavy: runner=beam only
  s = job.settings
  t0 = time.time()
  units = plan(s)
  runner = opts.get_all_options().get('runner') or 'DirectRunner'
  io.log(f'corpus: Beam pipeline ({runner}) over {len(units)} units')
  log = os.path.join(tempfile.gettempdir(), f'babel_beam_{os.getpid()}_{int(t0)}.log')
  try:
    with _stderr_to(log), beam.Pipeline(options=opts) as p:
      _pipeline(beam, p, job, units)
  except Exception as e:  # pylint: disable=broad-except  (a worker's error, as Beam re-raises it)
    raise failure(e, job.out_dir, log) from e
  os.remove(log)
  stats, totals, n_written = (_report(s.spill_dir, name) for name in
                              ('stats.json', 'languages.json', 'shards.json'))
  langs: dict[str, Any] = {}
  for lang, split, n, files, nbytes, lex, tokens in totals:
    entry = langs.setdefault(lang, build_rules.empty_language())
    entry['files'][split], entry['bytes'][split] = files, nbytes
    entry['lexical_tokens'][split], entry['tokens'][split] = lex, tokens
    entry['shards'][split] = [build_rules.shard_name(lang, split, i) for i in range(n)]
  names = [rel for e in langs.values() for split in e['shards'].values() for rel in split]
  missing = [rel for rel in names if not os.path.isfile(os.path.join(job.tmp, rel))]
  if missing or n_written != len(names):
    raise CorpusError(f'the Beam pipeline finished but {len(missing) or "some"} of '
                      f'{len(names)} shards are missing (e.g. {missing[:1]}); nothing written to '
                      f'{job.out_dir}')
  counts = collections.Counter({k: v for k, v in stats.items() if ':' not in k and k != 'bytes'})
  seen = [stats.get(f'seen:{i}', 0) for i in range(len(s.sources))]
  dt = max(time.time() - t0, 1e-9)
  io.log(f'corpus: Beam read {sum(seen):,} files, {stats.get("bytes", 0) / 1e6:,.1f} MB and '
         f'wrote {len(names)} shards in {dt:.0f}s')
  return {lang: langs[lang] for lang in sorted(langs)}, counts, seen, stats.get('bytes', 0)


def _report(spill_dir: str, name: str):
  path = os.path.join(spill_dir, name)
  if not os.path.isfile(path):
    raise CorpusError(f'the Beam pipeline finished without its report {name}; was its output '
                      f'folder ({spill_dir}) shared with the workers? (docs/beam.md)')
  with open(path) as f:
    return json.load(f)
