"""`--mode corpus`: source files and dataset shards -> filtered, deduplicated ArrayRecord shards.

Per document: language (extension, shebang, source hint, or a dataset's language column) ->
path/size/content filters -> exact dedup (sha256; the earliest copy read is kept) -> per-language
budget in bytes, tokens and files (the documents with the smallest content-hash keys, so a
budget is a deterministic sample whatever the reading order) -> near-dedup (MinHash LSH, bands
on disk) -> split by content hash (adding documents never moves old ones between train and
validation) -> shards. Reading and MinHash run in `corpus.workers` processes (scan.py,
dedup.py, workers.py); the output does not depend on their number. `corpus.runner=beam` runs
the same steps as an Apache Beam pipeline (beam_build.py, docs/beam.md) with the same output,
byte for byte: both call the same per-document and per-group rules (scan.read_unit, dedup,
build_rules); this module plans, checks and writes the manifest for both.

Output, written under a temporary name and renamed at the end (a crash leaves no manifest that
points at partial shards):
  <corpus_dir>/manifest.json
  <corpus_dir>/<language>/<split>-<i>.array_record   records: JSON {"text", "source", "path"}

With `corpus.facts` > 0 the manifest also records planted knowledge (data/facts.py): the
generated facts and the language they are taught in, part of the content hash. No shard holds
them (the tokenizer never trains on them); the pipeline writes them into that language's train
stream (data/pipeline.py, docs/facts.md).
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import time
from typing import Any

import numpy as np

from babel_jax import io
from babel_jax.config import default_config
from babel_jax.data import beam_build, build_rules, dedup, facts as facts_lib, filters
from babel_jax.data import languages as lang_lib
from babel_jax.data import manifest as manifest_lib, planted, scan, shards
from babel_jax.data import sources as sources_lib, workers as workers_lib
from babel_jax.errors import CorpusError

_NOT_SETTINGS = ('workers', 'runner', 'beam_options')  # how a corpus is built, not what it holds
_BAND_CHUNK_BYTES, _BAND_CHUNK_DOCS = 1 << 20, 250


def settings_dict(c) -> dict[str, Any]:
  return {k: v for k, v in c.to_dict().items() if k not in _NOT_SETTINGS}


def _same_settings(old: dict[str, Any], new: dict[str, Any]) -> bool:
  """Equal, counting a field an older manifest lacks as equal when it is at its default."""
  defaults = default_config().corpus.to_dict()
  return all(old.get(k, defaults[k]) == v for k, v in new.items()) and set(old) <= set(new)


def _budgets(c, known: set[str]) -> dict[str, dedup.Budget]:
  table = dedup.parse_table(c.max_tokens_by_language, 'corpus.max_tokens_by_language', known)
  return collections.defaultdict(
      lambda: dedup.Budget(c.max_bytes_per_language, int(c.max_tokens_per_language),
                           c.max_files_per_language),
      {lang: dedup.Budget(c.max_bytes_per_language, tokens, c.max_files_per_language)
       for lang, tokens in table.items()})


def _token_count(c) -> dict[str, Any]:
  if not c.token_model:
    return {'method': 'estimate', 'bytes_per_token': c.bytes_per_token}
  if not os.path.isfile(c.token_model):
    raise CorpusError(f'corpus.token_model {c.token_model!r} is not a file; give a sentencepiece '
                      "model (e.g. an earlier run's corpus/tokenizer/spm.model) or '' to estimate")
  with open(c.token_model, 'rb') as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  return {'method': 'sentencepiece', 'model': os.path.abspath(c.token_model),
          'model_sha256': sha}


def build_corpus(c, out_dir: str) -> dict[str, Any]:
  """Builds the corpus described by config section `c` (cfg.corpus) into out_dir; returns the
  manifest. An existing corpus with the same settings is reused; one with other settings is an
  error (corpora are never overwritten)."""
  out_dir = os.path.abspath(out_dir)
  existing = _existing(c, out_dir)
  if existing:
    return existing
  try:
    lang_map = lang_lib.LanguageMap(lang_lib.parse_extensions(c.extensions))
  except lang_lib.LanguageMapError as e:
    raise CorpusError(str(e)) from e
  known = lang_map.languages
  wanted = c.languages
  unknown = [w for w in wanted if w not in known]
  if unknown:
    raise CorpusError(f'corpus.languages names {unknown}, which no extension maps to; known: '
                      f'{sorted(known)} (extend with corpus.extensions)')
  _check_facts(c, wanted or known)
  budgets, modes = _budgets(c, known), dedup.parse_modes(c.dedup)
  columns = shards.parse_columns(c.columns)
  token_count = _token_count(c)
  beam = c.runner == 'beam'
  srcs = sources_lib.resolve(list(c.sources), list(c.paths), c.debian_dir, remote_ok=beam)
  if not srcs:
    raise CorpusError('no sources: set corpus.sources and/or corpus.paths')
  options = beam_build.options(c) if beam else None  # a rejected option: before any work
  tmp = f'{out_dir}.partial.{os.getpid()}'
  spill = os.path.join(tmp, '.spill')
  os.makedirs(spill)
  t0 = time.time()
  try:
    settings = scan.Settings(filters.FilterSettings.from_config(c), lang_map.extensions,
                             tuple(sorted(known)), tuple(wanted), columns, tuple(srcs), spill,
                             c.token_model, c.bytes_per_token)
    job = _Job(c, settings, budgets, modes, tmp, out_dir)
    if beam:
      langs, counts, seen, nbytes = beam_build.build(job, options)
    else:
      langs, counts, seen, nbytes = _build_local(job)
    shutil.rmtree(spill)
    check_left(job, counts, seen, set(langs))
    planted_langs = _planted(c, langs)
    facts_entry = _facts(c, langs)
    manifest = {
        'version': 1,
        'settings': settings_dict(c),
        'sources': [{'name': s.name, 'path': s.path, 'files_seen': seen[i]}
                    for i, s in enumerate(srcs)],
        'language_ids': {lang: i for i, lang in enumerate(sorted(langs))},
        'languages': {**langs, **planted_langs},
        'filtered': {r: counts[r] for r in (*filters.REASONS, 'exact_duplicate',
                                            'near_duplicate', 'over_cap', 'other_language',
                                            'not_code')},
        'files_read': sum(seen),
        'bytes_read': nbytes,
        'token_count': token_count,
        'workers': c.workers,
        'runner': c.runner,
        'build_seconds': round(time.time() - t0, 1),
    }
    if facts_entry:
      manifest['facts'] = facts_entry
    manifest['content_hash'] = _content_hash(tmp, langs, facts_entry)
    _write_manifest(tmp, manifest)  # last: every shard is written and hashed
  except BaseException as e:
    shutil.rmtree(tmp, ignore_errors=True)
    reason = io.storage_failure(e) if isinstance(e, Exception) else None
    if reason:
      raise CorpusError(f'cannot write the corpus next to {out_dir} ({reason}); the partial '
                        'build was removed: free space and run the same command again') from e
    raise
  if os.path.isdir(out_dir):
    os.rmdir(out_dir)  # empty (checked in _existing)
  os.rename(tmp, out_dir)
  io.log(manifest_lib.summary(manifest))
  return manifest


@dataclasses.dataclass(frozen=True)
class _Job:
  """One build, as both runners see it: the settings, budgets, dedup modes and where to write."""
  c: Any  # the corpus config section
  settings: scan.Settings
  budgets: dict[str, dedup.Budget]
  modes: set[str]
  tmp: str  # the partial corpus directory, renamed to out_dir at the end
  out_dir: str


def _build_local(job: _Job):
  """The local runner: `corpus.workers` processes read, MinHash and write; returns (languages'
  manifest entries, counts by reason, files seen per source, bytes read)."""
  c, settings = job.c, job.settings
  t0 = time.time()
  with workers_lib.Pool(c.workers) as pool:
    units = scan.plan(list(settings.sources), settings.columns)
    index, counts, seen, nbytes = _read(pool, units, settings)
    dt = max(time.time() - t0, 1e-9)
    io.log(f'corpus: read {sum(seen):,} files, {nbytes / 1e6:,.0f} MB from {len(units)} units '
           f'in {dt:.0f}s ({nbytes / 1e6 / dt:.1f} MB/s, {c.workers} worker'
           f'{"s" * (c.workers > 1)})')
    chosen = _choose(index, settings.languages, job.budgets, job.modes, counts)
    check_left(job, counts, seen, set(chosen))
    del index
    if 'near' in job.modes and c.near_dup_threshold > 0:
      chosen = _near_dedup(pool, chosen, settings.spill_dir, c, counts)
    langs = _write(pool, chosen, job.tmp, settings.spill_dir,
                   [s.name for s in settings.sources], [u.source for u in units], c)
  return langs, counts, seen, nbytes


def check_left(job: _Job, counts: collections.Counter, seen: list[int], chosen: set[str]) -> None:
  """Something was read, something is left, and every language asked for is there."""
  names, wanted, out_dir = ', '.join(s.name for s in job.settings.sources), job.c.languages, \
      job.out_dir
  if not sum(seen):
    raise CorpusError(f'the sources ({names}) hold no files; nothing written to {out_dir}')
  if not chosen:
    raise CorpusError(f'no file is left to write: all {sum(seen):,} files read from {names} '
                      f'were filtered out ({_filtered(counts)}); nothing written to {out_dir}')
  if not set(wanted) <= chosen:
    raise CorpusError(f'corpus.languages asks for {sorted(set(wanted) - chosen)}, but the '
                      f'sources ({names}) hold no usable files in them (filtered out: '
                      f'{_filtered(counts)}); nothing written to {out_dir}')


def _write_manifest(root: str, manifest: dict[str, Any]) -> None:
  """manifest.json under a temporary name, then renamed: it is there whole or not at all."""
  io.atomic_write(os.path.join(root, manifest_lib.MANIFEST),
                  json.dumps(manifest, indent=2, sort_keys=True))


# The config field that decides each filter reason, for the message when nothing is left.
_FIELD = {'too_small': 'corpus.min_file_bytes', 'too_large': 'corpus.max_file_bytes',
          'long_lines': 'corpus.max_line_length, corpus.max_mean_line_length',
          'low_alnum': 'corpus.min_alnum_fraction', 'other_language': 'corpus.languages',
          'not_code': 'corpus.extensions', 'over_cap': 'the corpus.max_* budgets'}


def _filtered(counts: collections.Counter) -> str:
  """'too_large 5 (corpus.max_file_bytes), not_code 2 (corpus.extensions)', largest first."""
  parts = [f'{reason} {n:,}' + (f' ({_FIELD[reason]})' if reason in _FIELD else '')
           for reason, n in counts.most_common() if n]
  return ', '.join(parts)


def _existing(c, out_dir: str) -> dict[str, Any] | None:
  """The manifest of a corpus already there with these settings; refuses anything else there."""
  if os.path.exists(os.path.join(out_dir, manifest_lib.MANIFEST)):
    manifest = manifest_lib.load(out_dir)
    if _same_settings(manifest['settings'], settings_dict(c)):
      io.log(f'corpus: {out_dir} is up to date ({manifest["content_hash"][:12]}), reusing it')
      return manifest
    raise CorpusError(f'{out_dir} already holds a corpus built with other settings; choose '
                      f'another data.corpus_dir or delete it (corpora are never overwritten)')
  if os.path.exists(out_dir) and os.listdir(out_dir):
    raise CorpusError(f'{out_dir} exists, is not empty and has no {manifest_lib.MANIFEST}; '
                      'choose another data.corpus_dir')
  for stale in glob.glob(f'{out_dir}.partial.*'):
    shutil.rmtree(stale, ignore_errors=True)
  return None


def _choose(index: np.ndarray, ids: tuple[str, ...], budgets: dict[str, dedup.Budget],
            modes: set[str], counts: collections.Counter) -> dict[str, np.ndarray]:
  """Exact dedup, then each language's rows in sample order, cut to its budget."""
  if 'exact' in modes:
    keep = dedup.first_copies(index)
    counts['exact_duplicate'] += int((~keep).sum())
    index = index[keep]
  chosen = {}
  for i in np.unique(index['lang']).tolist():
    rows = index[index['lang'] == i]
    rows = rows[dedup.sample_order(rows)]
    n = budgets[ids[i]].take(rows)
    counts['over_cap'] += len(rows) - n
    chosen[ids[i]] = rows[:n]
  return chosen


def _read(pool: workers_lib.Pool, units: list[scan.Unit], settings: scan.Settings):
  """Scans every unit (largest first, for balance); merges the results in unit order."""
  progress = workers_lib.Progress('read', sum(u.input_bytes for u in units), io.log)
  results: dict[int, scan.UnitResult] = {}
  tasks = [(settings, u) for u in sorted(units, key=lambda u: (-u.input_bytes, u.index))]
  for r in pool.run(scan.scan, tasks):
    results[r.unit] = r
    progress.update(units[r.unit].input_bytes, r.files, r.nbytes)
  progress.finish()
  counts: collections.Counter = collections.Counter()
  seen = [0] * len(settings.sources)
  for u in units:
    counts.update(results[u.index].counts)
    seen[u.source] += results[u.index].files
  index = np.concatenate([results[u.index].index for u in units] or
                         [np.zeros(0, scan.INDEX)])
  return index, counts, seen, sum(r.nbytes for r in results.values())


def _near_dedup(pool: workers_lib.Pool, chosen: dict[str, np.ndarray], spill: str, c,
                counts: collections.Counter) -> dict[str, np.ndarray]:
  """MinHash bands of every chosen document (in the workers) into memmaps on disk, then the
  LSH decision per language from one band column at a time (dedup.near_duplicates)."""
  b = dedup.Bander.get(c.near_dup_threshold, c.minhash_perms).b
  bands, tasks, where = {}, [], {}
  for lang, rows in chosen.items():
    bands[lang] = np.lib.format.open_memmap(os.path.join(spill, f'bands-{lang}.npy'), 'w+',
                                            np.uint64, (len(rows), b))
    start = 0
    while start < len(rows):
      stop = start + 1
      size = int(rows['nbytes'][start])
      while (stop < len(rows) and stop - start < _BAND_CHUNK_DOCS and
             size < _BAND_CHUNK_BYTES):
        size += int(rows['nbytes'][stop])
        stop += 1
      where[len(tasks)] = (lang, start, stop, size)
      tasks.append((len(tasks), spill, rows[start:stop], c.near_dup_threshold, c.minhash_perms))
      start = stop
  progress = workers_lib.Progress('minhash', sum(w[3] for w in where.values()), io.log)
  for chunk_id, out in pool.run(dedup.band_task, tasks):
    lang, start, stop, size = where[chunk_id]
    bands[lang][start:stop] = out
    progress.update(size, stop - start, size)
  progress.finish()
  kept = {}
  for lang, rows in chosen.items():
    bands[lang].flush()
    dropped = dedup.near_duplicates(bands[lang])
    counts['near_duplicate'] += int(dropped.sum())
    kept[lang] = rows[~dropped]
    del bands[lang]
    os.remove(os.path.join(spill, f'bands-{lang}.npy'))
  return kept


def _write(pool: workers_lib.Pool, chosen: dict[str, np.ndarray], tmp: str, spill: str,
           source_names: list[str], unit_sources: list[int], c) -> dict[str, Any]:
  tasks = []
  for lang, rows in chosen.items():
    rows_file = os.path.join(spill, f'rows-{lang}.npy')
    np.save(rows_file, rows)
    tasks.append((tmp, spill, lang, rows_file, source_names, unit_sources,
                  c.shard_mb * 2**20, c.val_fraction))
  progress = workers_lib.Progress('write', sum(int(r['nbytes'].sum()) for r in chosen.values()),
                                  io.log)
  langs = {}
  for lang, info in pool.run(_write_language, tasks):
    langs[lang] = info
    size = info['bytes']['train'] + info['bytes']['validation']
    progress.update(size, info['files']['train'] + info['files']['validation'], size)
  progress.finish()
  return {lang: langs[lang] for lang in sorted(langs)}


def _write_language(task: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
  """Worker: one language's shards, documents in sample order, split by content hash."""
  root, spill, lang, rows_file, source_names, unit_sources, shard_bytes, val_fraction = task
  rows = np.load(rows_file)
  is_val = build_rules.is_validation(rows['d0'], val_fraction)
  out = build_rules.empty_language()
  os.makedirs(os.path.join(root, lang))
  with scan.SpillReader(spill) as reader:
    for split, part in (('train', rows[~is_val]), ('validation', rows[is_val])):
      cutter, writer, lex = build_rules.ShardCutter(shard_bytes), None, 0
      for row in part:
        data = reader.data(row)
        record = build_rules.record(data, source_names[unit_sources[int(row['unit'])]],
                                    reader.path(row))
        shard, new = cutter.place(len(record))
        if new:
          if writer is not None:
            writer.close()
          out['shards'][split].append(build_rules.shard_name(lang, split, shard))
          writer = build_rules.open_shard(root, out['shards'][split][-1])
        writer.write(record)
        lex += build_rules.lexical_tokens(data)
      if writer is not None:
        writer.close()
      out['files'][split] = len(part)
      out['bytes'][split] = int(part['nbytes'].sum())
      out['lexical_tokens'][split] = lex
      out['tokens'][split] = int(part['tokens'].sum())
  return lang, out


def _planted(c, langs: dict[str, Any]) -> dict[str, Any]:
  """Manifest entries of the planted languages: their source's shards and how they are made."""
  out = {}
  for p in planted.specs(c.planted, c.planted_seed, c.planted_share):
    if p.of not in langs:
      raise CorpusError(f'corpus.planted names {p.name!r}, but the corpus holds no {p.of} files '
                        f'(it has {sorted(langs)})')
    out[p.name] = {**langs[p.of], 'planted': dataclasses.asdict(p)}
  return out


def _check_facts(c, languages) -> None:
  """Before reading anything: corpus.facts* name a language the corpus can hold and facts.py
  can write."""
  if c.facts < 0 or c.facts_seed < 0:
    raise CorpusError(f'corpus.facts={c.facts} and corpus.facts_seed={c.facts_seed} must be >= 0')
  if not c.facts:
    return
  lang = c.facts_language
  if lang not in facts_lib.LANGUAGES:
    raise CorpusError(f'corpus.facts_language={lang!r} has no fact renderings; one of '
                      f'{list(facts_lib.LANGUAGES)}')
  if lang not in languages:
    raise CorpusError(f'corpus.facts_language={lang!r} is not one of the corpus\'s languages '
                      f'({sorted(languages)}); the facts are taught in a corpus language')


def _facts(c, langs: dict[str, Any]) -> dict[str, Any] | None:
  """The manifest's `facts` entry: FactSet.to_json() (seed, count, taught, untaught), the
  language they are taught in and where they go (FactSet.from_json reads the entry as it is)."""
  if not c.facts:
    return None
  if c.facts_language not in langs:
    raise CorpusError(f'corpus.facts_language={c.facts_language!r}, but the corpus holds no '
                      f'{c.facts_language} files (it has {sorted(langs)}); nothing written')
  fact_set = facts_lib.generate(int(c.facts), int(c.facts_seed))
  return {**fact_set.to_json(), 'language': c.facts_language,
          'placement': f'train split of {c.facts_language}, data.facts_rate of its documents'}


def _content_hash(root: str, langs: dict[str, Any], facts: dict[str, Any] | None = None) -> str:
  return build_rules.content_hash(root, langs, facts)
