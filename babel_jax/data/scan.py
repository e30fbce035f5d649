"""The read phase of a corpus build: sources cut into work units, and the scan of one unit.

A unit is a slice of one source that a worker process reads on its own: up to ~8 MB of a
directory's files or a zip's members, a whole tar (compressed tars do not seek), a few row
groups of a Parquet file, or a whole JSON Lines file (compressed streams do not seek). Scanning
a unit finds each document's language, applies the filters, hashes it (sha256) and counts its
tokens; a kept document's bytes go to the unit's spill file and one fixed-size row goes to the
unit's index (numpy, `INDEX`), which is all the main process holds per document. Every document
carries its position (unit, item): exact dedup keeps the earliest copy, so the result is the
one a sequential read gives, whatever the number of workers.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import os
import zipfile
from typing import Any, Callable, Iterator

import numpy as np

from babel_jax.data import filters, languages as lang_lib, shards, sources as sources_lib
from babel_jax.data import tokenizer

# d0: sha256 bytes 0-4 (the split), key: bytes 4-12 (the sampling order), r1: bytes 12-16;
# together the first 128 bits of the hash identify a document for exact dedup.
INDEX = np.dtype([('d0', '<u4'), ('key', '<u8'), ('r1', '<u4'), ('lang', '<u2'),
                  ('unit', '<u4'), ('item', '<u4'), ('offset', '<u8'), ('nbytes', '<u4'),
                  ('pathlen', '<u4'), ('tokens', '<u4')])
UNIT_BYTES, UNIT_FILES, PARQUET_UNIT_BYTES = 8 << 20, 2000, 32 << 20
_ROWS_PER_ARRAY = 1 << 16


@dataclasses.dataclass(frozen=True)
class Unit:
  index: int
  source: int  # position in the build's source list
  kind: str  # 'files', 'zip', 'tar', 'parquet' or 'jsonl'
  path: str  # the directory root, archive or shard file
  name: str  # the shard's name in its folder (row paths of rows without a path column)
  members: tuple = ()  # relative paths, zip member names, or Parquet row groups
  input_bytes: int = 0  # for progress and ETA
  layout: shards.Layout | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
  """What a worker needs to scan units (pickled with each task)."""
  filters: filters.FilterSettings
  extensions: dict[str, str]
  languages: tuple[str, ...]  # language ids are positions here
  wanted: tuple[str, ...]
  columns: dict[str, str]
  sources: tuple[sources_lib.Source, ...]
  spill_dir: str
  token_model: str  # a sentencepiece model counts tokens; '' estimates them
  bytes_per_token: float


@dataclasses.dataclass
class UnitResult:
  unit: int
  index: np.ndarray  # INDEX rows of the kept documents
  counts: dict[str, int]  # filter reasons
  files: int  # documents seen
  nbytes: int  # bytes read


def plan(srcs: list[sources_lib.Source], columns: dict[str, str]) -> list[Unit]:
  """Every source cut into units, in reading order (the order a sequential build reads)."""
  units: list[Unit] = []

  def add(**kw):
    units.append(Unit(index=len(units), **kw))

  for si, src in enumerate(srcs):
    if os.path.isfile(src.path) and shards.is_shard(src.path):
      _plan_shard(add, si, src, src.path, os.path.basename(src.path), columns)
    elif sources_lib.is_archive(src.path) and src.path.lower().endswith(('.zip', '.jar')):
      entries = [(e.path, e.size) for e in sources_lib.iterate(src)]
      for part, size in _chunked(entries):
        add(source=si, kind='zip', path=src.path, name='', members=part, input_bytes=size)
    elif sources_lib.is_archive(src.path):
      add(source=si, kind='tar', path=src.path, name='', input_bytes=os.path.getsize(src.path))
    elif os.path.isdir(src.path):
      entries = [(e.path, e.size) for e in sources_lib.iterate(src)]
      found = shards.folder_shards(entries)
      for rel in found or ():
        _plan_shard(add, si, src, os.path.join(src.path, rel), rel, columns)
      for part, size in ([] if found else _chunked(entries)):
        add(source=si, kind='files', path=src.path, name='', members=part, input_bytes=size)
    else:
      raise sources_lib.SourceError(
          f'source {src.name}: {src.path!r} is not a directory, an archive '
          f'({", ".join(sources_lib.ARCHIVE_SUFFIXES)}) or a dataset shard '
          f'({", ".join(shards.SUFFIXES)})')
  return units


def _plan_shard(add, si: int, src, path: str, name: str, columns: dict[str, str]) -> None:
  need_language = src.default_language is None
  if path.lower().endswith(shards.PARQUET):
    lay = shards.parquet_layout(path, columns, need_language)
    for groups, size in shards.parquet_row_groups(path, PARQUET_UNIT_BYTES):
      add(source=si, kind='parquet', path=path, name=name, members=groups, input_bytes=size,
          layout=lay)
  else:
    lay = shards.jsonl_layout(path, columns, need_language)
    add(source=si, kind='jsonl', path=path, name=name, input_bytes=os.path.getsize(path),
        layout=lay)


def _chunked(entries: list[tuple[str, int]]) -> Iterator[tuple[tuple[str, ...], int]]:
  part, size = [], 0
  for rel, n in entries:
    part.append(rel)
    size += n
    if size >= UNIT_BYTES or len(part) >= UNIT_FILES:
      yield tuple(part), size
      part, size = [], 0
  if part:
    yield tuple(part), size


# An entry: (path, size, read, dataset language name, dataset extension, is a dataset row).
_Entry = tuple[str, int, Callable[[], bytes], Any, Any, bool]


def _entries(unit: Unit, src: sources_lib.Source, columns: dict[str, str]) -> Iterator[_Entry]:
  if unit.kind == 'files':
    for rel in unit.members:
      full = os.path.join(unit.path, rel)
      try:
        size = os.lstat(full).st_size
      except OSError:  # gone since the plan: as if never listed
        continue
      yield rel, size, lambda full=full: _read(full), None, None, False
  elif unit.kind == 'zip':
    zf = _open_zip(unit.path)
    for name in unit.members:
      info = zf.getinfo(name)
      yield (name, info.file_size, lambda info=info: sources_lib.read_member(zf, info), None,
             None, False)
  elif unit.kind == 'tar':
    for e in sources_lib.iterate(src):
      yield e.path, e.size, e.read, None, None, False
  else:
    rows = (shards.read_parquet(unit.path, unit.name, unit.members, unit.layout)
            if unit.kind == 'parquet' else shards.read_jsonl(unit.path, unit.name, columns))
    for row in rows:
      yield row.path, len(row.data), lambda data=row.data: data, row.lang, row.ext, True


_ZIP: list[zipfile.ZipFile] = []  # the last zip this process read: a JDK's src.zip has a
#                                    15,000-entry directory, parsed once, not once a unit


def _open_zip(path: str) -> zipfile.ZipFile:
  if not _ZIP or _ZIP[0].filename != path:
    while _ZIP:
      _ZIP.pop().close()
    _ZIP.append(sources_lib.open_zip(path))
  return _ZIP[0]


def _read(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise sources_lib.SourceError(f'cannot read {path}: {e.strerror or e}') from e


_TOKENIZERS: dict[str, Any] = {}


def count_tokens(data: bytes, s: Settings) -> int:
  """Tokens of one document: the configured sentencepiece model's count, else an estimate."""
  if not s.token_model:
    return math.ceil(len(data) / s.bytes_per_token)
  if s.token_model not in _TOKENIZERS:
    _TOKENIZERS[s.token_model] = tokenizer.Tokenizer(s.token_model)
  return len(_TOKENIZERS[s.token_model].encode(data.decode('utf-8')))


@dataclasses.dataclass
class Tally:
  """What reading a unit counted besides the kept documents: filter reasons, files, bytes."""
  counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  files: int = 0
  nbytes: int = 0


def read_unit(s: Settings, unit: Unit, tally: Tally,
              src: sources_lib.Source | None = None) -> Iterator[tuple[int, str, str, bytes]]:
  """The kept documents of one unit as (item, path, language, bytes), in reading order: the
  language, filter and counting rules of every runner (the local pool's scan and the Beam
  pipeline's, data/beam_build.py). `src` replaces the unit's source (a remote file copied to
  local disk), keeping its language hints."""
  src = src or s.sources[unit.source]
  lang_map = lang_lib.LanguageMap(s.extensions)
  known = lang_map.languages
  overrides = dict(src.overrides)
  for item, (path, size, read, raw_lang, ext, is_row) in enumerate(_entries(unit, src, s.columns)):
    tally.files += 1
    data = read() if is_row else None
    tally.nbytes += len(data) if is_row else 0
    if is_row:
      lang = ((raw_lang and shards.language_name(raw_lang, known)) or
              (ext and lang_map.by_name('x.' + ext.lstrip('.'), overrides)) or
              lang_map.by_name(path, overrides) or src.default_language or
              lang_map.by_shebang(data))
    else:
      lang = lang_map.by_name(path, overrides, src.default_language)
      if lang is None and '.' not in os.path.basename(path):
        if size > s.filters.max_bytes:
          tally.counts['too_large'] += 1
          continue
        data = read()
        tally.nbytes += len(data)
        lang = lang_map.by_shebang(data)
    if lang is None:
      tally.counts['not_code'] += 1
      continue
    if s.wanted and lang not in s.wanted:
      tally.counts['other_language'] += 1
      continue
    reason = filters.check_path(path) or filters.check_size(size, s.filters)
    if reason is None:
      if data is None:
        data = read()
        tally.nbytes += len(data)
      reason = filters.check_content(data, s.filters)
    if reason:
      tally.counts[reason] += 1
      continue
    yield item, path, lang, data


def index_row(s: Settings, data: bytes, path_bytes: bytes, lang: str, unit: int, item: int,
              offset: int) -> tuple:
  """A kept document's INDEX row: its sha256 cut into the dedup, sample and split keys."""
  sha = hashlib.sha256(data).digest()
  return (int.from_bytes(sha[0:4], 'big'), int.from_bytes(sha[4:12], 'big'),
          int.from_bytes(sha[12:16], 'big'), s.languages.index(lang), unit, item, offset,
          len(data), len(path_bytes), count_tokens(data, s))


def scan(task: tuple[Settings, Unit]) -> UnitResult:
  """Reads one unit (read_unit); kept bytes and paths to the spill file, rows to the index."""
  s, unit = task
  tally = Tally()
  rows: list[tuple] = []
  arrays: list[np.ndarray] = []
  offset = 0
  with open(os.path.join(s.spill_dir, f'{unit.index:07d}.bin'), 'wb') as spill:
    for item, path, lang, data in read_unit(s, unit, tally):
      path_bytes = path.encode('utf-8', 'surrogatepass')
      spill.write(data)
      spill.write(path_bytes)
      rows.append(index_row(s, data, path_bytes, lang, unit.index, item, offset))
      offset += len(data) + len(path_bytes)
      if len(rows) >= _ROWS_PER_ARRAY:  # tuples cost ~200 bytes a document, rows 46
        arrays.append(np.array(rows, dtype=INDEX))
        rows.clear()
  arrays.append(np.array(rows, dtype=INDEX))
  return UnitResult(unit.index, np.concatenate(arrays), dict(tally.counts), tally.files,
                    tally.nbytes)


class SpillReader:
  """Reads documents back from the spill files, keeping a bounded number of files open."""

  def __init__(self, spill_dir: str, max_open: int = 64):
    self.spill_dir, self.max_open = spill_dir, max_open
    self._fds: collections.OrderedDict[int, int] = collections.OrderedDict()

  def _fd(self, unit: int) -> int:
    if unit in self._fds:
      self._fds.move_to_end(unit)
    else:
      if len(self._fds) >= self.max_open:
        os.close(self._fds.popitem(last=False)[1])
      self._fds[unit] = os.open(os.path.join(self.spill_dir, f'{unit:07d}.bin'), os.O_RDONLY)
    return self._fds[unit]

  def data(self, row) -> bytes:
    return os.pread(self._fd(int(row['unit'])), int(row['nbytes']), int(row['offset']))

  def path(self, row) -> str:
    raw = os.pread(self._fd(int(row['unit'])), int(row['pathlen']),
                   int(row['offset']) + int(row['nbytes']))
    return raw.decode('utf-8', 'surrogatepass')

  def close(self) -> None:
    for fd in self._fds.values():
      os.close(fd)
    self._fds.clear()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
