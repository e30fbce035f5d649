"""`--mode corpus`: real source files -> filtered, deduplicated ArrayRecord shards + manifest.

Pipeline per file: language (extension, shebang, source hint) -> path/size/content filters ->
exact dedup (sha256) -> per-language cap (keeps the files with the smallest content hash, so a
cap is a deterministic sample whatever the reading order) -> near-dedup (MinHash LSH) -> split by
content hash (adding files never moves old ones between train and validation) -> shards.

Output, written under a temporary name and renamed at the end (a crash leaves no manifest that
points at partial shards):
  <corpus_dir>/manifest.json
  <corpus_dir>/<language>/<split>-<i>.array_record   records: JSON {"text", "source", "path"}
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import hashlib
import heapq
import json
import os
import re
import shutil
import time
from typing import Any

from array_record.python import array_record_module as array_record
from datasketch import MinHash, MinHashLSH

from babel_jax import config as config_lib
from babel_jax.data import filters, languages as lang_lib, sources as sources_lib
from babel_jax.errors import CorpusError

SPLITS = ('train', 'validation')
MANIFEST = 'manifest.json'
_WORDS = re.compile(rb'\w+')
_LEX = re.compile(rb'\w+|[^\w\s]')


@dataclasses.dataclass
class Doc:
  sha: str
  source: str
  path: str
  data: bytes

  @property
  def key(self) -> str:  # cap-sampling order, independent of the split bits sha[:8].
    return self.sha[8:24]



def split_of(sha: str, val_fraction: float) -> str:
  """Train/validation from the content hash alone, so a file never changes split."""
  return 'validation' if int(sha[:8], 16) % 10_000 < round(val_fraction * 10_000) else 'train'


class _Capped:
  """Keeps the docs with the smallest keys within a byte and a file budget (0 = unlimited)."""

  def __init__(self, max_bytes: int, max_files: int):
    self.max_bytes, self.max_files = max_bytes, max_files
    self.heap: list[tuple[str, int, Doc]] = []  # (negated-order key, tiebreak, doc)
    self.bytes = 0
    self.dropped = 0
    self._n = 0

  def offer(self, doc: Doc) -> None:
    self._n += 1
    heapq.heappush(self.heap, (_neg(doc.key), self._n, doc))
    self.bytes += len(doc.data)
    while ((self.max_bytes and self.bytes > self.max_bytes and len(self.heap) > 1) or
           (self.max_files and len(self.heap) > self.max_files)):
      _, _, gone = heapq.heappop(self.heap)
      self.bytes -= len(gone.data)
      self.dropped += 1

  def docs(self) -> list[Doc]:
    return sorted((d for _, _, d in self.heap), key=lambda d: d.key)


def _neg(key: str) -> str:
  # Largest key first in a min-heap: complement each hex digit.
  return key.translate(str.maketrans('0123456789abcdef', 'fedcba9876543210'))


def _minhash(data: bytes, num_perm: int, shingle: int = 5) -> MinHash:
  words = _WORDS.findall(data)
  grams = [b' '.join(words[i:i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
  m = MinHash(num_perm=num_perm, seed=1)
  m.update_batch(grams or [b''])
  return m


def _near_dedup(docs: list[Doc], threshold: float, num_perm: int) -> tuple[list[Doc], int]:
  """Drops every doc whose MinHash Jaccard estimate with an earlier kept doc is >= threshold."""
  if threshold <= 0:
    return docs, 0
  lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
  kept = []
  for doc in docs:
    m = _minhash(doc.data, num_perm)
    if lsh.query(m):
      continue
    lsh.insert(doc.sha, m)
    kept.append(doc)
  return kept, len(docs) - len(kept)


def settings_dict(c) -> dict[str, Any]:
  return c.to_dict()


def _log(msg: str) -> None:
  print(msg, flush=True)


def build(c, out_dir: str) -> dict[str, Any]:
  """Builds the corpus described by config section `c` (cfg.corpus) into out_dir; returns the
  manifest. An existing corpus with the same settings is reused; one with other settings is an
  error (corpora are never overwritten)."""
  out_dir = os.path.abspath(out_dir)
  existing = os.path.join(out_dir, MANIFEST)
  if os.path.exists(existing):
    manifest = load_manifest(out_dir)
    if manifest['settings'] == settings_dict(c):
      _log(f'corpus: {out_dir} is up to date ({manifest["content_hash"][:12]}), reusing it')
      return manifest
    raise CorpusError(f'{out_dir} already holds a corpus built with other settings; choose '
                      f'another data.corpus_dir or delete it (corpora are never overwritten)')
  if os.path.exists(out_dir) and os.listdir(out_dir):
    raise CorpusError(f'{out_dir} exists, is not empty and has no {MANIFEST}; choose another '
                      'data.corpus_dir')
  for stale in glob.glob(f'{out_dir}.partial.*'):
    shutil.rmtree(stale, ignore_errors=True)

  try:
    lang_map = lang_lib.LanguageMap(lang_lib.parse_extensions(c.extensions))
  except lang_lib.LanguageMapError as e:
    raise CorpusError(str(e)) from e
  wanted = config_lib.items(c.languages)
  unknown = [w for w in wanted if w not in lang_map.languages]
  if unknown:
    raise CorpusError(f'corpus.languages names {unknown}, which no extension maps to; known: '
                      f'{sorted(lang_map.languages)} (extend with corpus.extensions)')
  srcs = sources_lib.resolve(list(config_lib.items(c.sources)), list(config_lib.items(c.paths)),
                             c.debian_dir)
  if not srcs:
    raise CorpusError('no sources: set corpus.sources and/or corpus.paths')
  settings = filters.FilterSettings.from_config(c)
  counts: collections.Counter = collections.Counter()
  capped: dict[str, _Capped] = {}
  seen: set[str] = set()
  source_stats = []
  t0 = last = time.time()
  files = nbytes = 0
  for src in srcs:
    overrides = dict(src.overrides)
    src_files = 0
    for entry in sources_lib.iterate(src):
      files += 1
      src_files += 1
      now = time.time()
      if now - last > 2:
        last = now
        kept = sum(len(k.heap) for k in capped.values())
        _log(f'corpus: {files} files ({files / (now - t0):.0f}/s), {nbytes / 1e6:.0f} MB read '
             f'({nbytes / 1e6 / (now - t0):.1f} MB/s), {kept} kept so far [{src.name}]')
      lang = lang_map.by_name(entry.path, overrides, src.default_language)
      data = None
      if lang is None and '.' not in os.path.basename(entry.path):
        if entry.size > settings.max_bytes:
          counts['too_large'] += 1
          continue
        data = entry.read()
        nbytes += len(data)
        lang = lang_map.by_shebang(data)
      if lang is None:
        counts['not_code'] += 1
        continue
      if wanted and lang not in wanted:
        counts['other_language'] += 1
        continue
      reason = filters.check_path(entry.path) or filters.check_size(entry.size, settings)
      if reason is None:
        if data is None:
          data = entry.read()
          nbytes += len(data)
        reason = filters.check_content(data, settings)
      if reason:
        counts[reason] += 1
        continue
      sha = hashlib.sha256(data).hexdigest()
      if sha in seen:
        counts['exact_duplicate'] += 1
        continue
      seen.add(sha)
      if lang not in capped:
        capped[lang] = _Capped(c.max_bytes_per_language, c.max_files_per_language)
      capped[lang].offer(Doc(sha, src.name, entry.path, data))
    source_stats.append({'name': src.name, 'path': src.path, 'files_seen': src_files})
  _log(f'corpus: read {files} files, {nbytes / 1e6:.0f} MB in {time.time() - t0:.0f}s; '
       f'near-dedup and writing shards')
  missing = [w for w in wanted if w not in capped]
  if missing:
    raise CorpusError(f'corpus.languages asks for {missing}, but the sources '
                      f'({", ".join(s.name for s in srcs)}) hold no usable files in them')

  tmp = f'{out_dir}.partial.{os.getpid()}'
  os.makedirs(tmp)
  langs: dict[str, Any] = {}
  for lang in sorted(capped):
    counts['over_cap'] += capped[lang].dropped
    docs, near = _near_dedup(capped[lang].docs(), c.near_dup_threshold, c.minhash_perms)
    counts['near_duplicate'] += near
    langs[lang] = _write_language(tmp, lang, docs, c.shard_mb * 2**20, c.val_fraction)
  manifest = {
      'version': 1,
      'settings': settings_dict(c),
      'sources': source_stats,
      'language_ids': {lang: i for i, lang in enumerate(sorted(langs))},
      'languages': langs,
      'filtered': {r: counts[r] for r in (*filters.REASONS, 'exact_duplicate', 'near_duplicate',
                                          'over_cap', 'other_language', 'not_code')},
      'files_read': files,
      'bytes_read': nbytes,
      'build_seconds': round(time.time() - t0, 1),
  }
  manifest['content_hash'] = _content_hash(tmp, langs)
  with open(os.path.join(tmp, MANIFEST), 'w') as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
  if os.path.isdir(out_dir):
    os.rmdir(out_dir)  # empty (checked above)
  os.rename(tmp, out_dir)
  _log(summary(manifest))
  return manifest


def _write_language(root: str, lang: str, docs: list[Doc], shard_bytes: int,
                    val_fraction: float) -> dict[str, Any]:
  out: dict[str, Any] = {'files': {}, 'bytes': {}, 'lexical_tokens': {}, 'shards': {}}
  os.makedirs(os.path.join(root, lang))
  for split in SPLITS:
    part = [d for d in docs if split_of(d.sha, val_fraction) == split]
    shards, size, writer = [], 0, None
    for d in part:
      if writer is None or size >= shard_bytes:
        if writer is not None:
          writer.close()
        rel = f'{lang}/{split}-{len(shards):05d}.array_record'
        shards.append(rel)
        writer = array_record.ArrayRecordWriter(os.path.join(root, rel), 'group_size:1')
        size = 0
      record = json.dumps({'text': d.data.decode('utf-8'), 'source': d.source,
                           'path': d.path}).encode()
      writer.write(record)
      size += len(record)
    if writer is not None:
      writer.close()
    out['files'][split] = len(part)
    out['bytes'][split] = sum(len(d.data) for d in part)
    out['lexical_tokens'][split] = sum(len(_LEX.findall(d.data)) for d in part)
    out['shards'][split] = shards
  return out


def _content_hash(root: str, langs: dict[str, Any]) -> str:
  h = hashlib.sha256()
  for lang in sorted(langs):
    for split in SPLITS:
      for rel in langs[lang]['shards'][split]:
        h.update(rel.encode())
        with open(os.path.join(root, rel), 'rb') as f:
          for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
  return h.hexdigest()


def load_manifest(corpus_dir: str) -> dict[str, Any]:
  path = os.path.join(corpus_dir, MANIFEST)
  if not os.path.isfile(path):
    raise CorpusError(f'no corpus at {corpus_dir!r} ({MANIFEST} missing); build it with '
                      '--mode corpus')
  with open(path) as f:
    manifest = json.load(f)
  for lang, info in manifest['languages'].items():
    for split in SPLITS:
      for rel in info['shards'][split]:
        if not os.path.isfile(os.path.join(corpus_dir, rel)):
          raise CorpusError(f'{path} names shard {rel!r} for {lang}/{split}, which is missing')
  return manifest


def read_texts(corpus_dir: str, manifest: dict[str, Any], lang: str, split: str):
  """Yields the documents (str) of one language and split, in shard order."""
  for rel in manifest['languages'][lang]['shards'][split]:
    reader = array_record.ArrayRecordReader(os.path.join(corpus_dir, rel))
    try:
      for i in range(reader.num_records()):
        yield json.loads(reader.read([i])[0])['text']
    finally:
      reader.close()


def summary(manifest: dict[str, Any]) -> str:
  rows = [f'{"language":<12}{"train files":>12}{"val files":>10}{"MB":>9}{"lex tokens":>13}']
  for lang, info in sorted(manifest['languages'].items()):
    files, b, tok = info['files'], info['bytes'], info['lexical_tokens']
    rows.append(f'{lang:<12}{files["train"]:>12}{files["validation"]:>10}'
                f'{(b["train"] + b["validation"]) / 1e6:>9.2f}'
                f'{tok["train"] + tok["validation"]:>13,}')
  dropped = ', '.join(f'{k} {v}' for k, v in manifest['filtered'].items() if v)
  return '\n'.join(rows + [f'files read {manifest["files_read"]}; dropped: {dropped}',
                           f'content hash {manifest["content_hash"][:16]}'])
