"""Dataset shards as corpus sources: Parquet and JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst).

Each row is one document. Without a mapping, a row's columns are found by name:
  content  'content' or 'text'                       (required)
  lang     'lang' or 'language'                       The Stack's names ("Python", "C++", "C#")
  path     'max_stars_repo_path' or 'path'            language by extension; path filters
  ext      'ext'                                       The Stack v1's extension column ("py")
`corpus.columns='content=code,lang=language_name,path=file'` names the columns of other
layouts; a mapped column must exist. Rows are streamed: Parquet in record batches of the needed
columns only, JSON Lines line by line (compressed streams decompressed in chunks), so memory is
bounded by one row group's columns or one line, whatever the shard's size.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import zlib
from typing import Iterator

from babel_jax import config as config_lib
from babel_jax.errors import ShardError

PARQUET = ('.parquet',)
JSONL = ('.jsonl', '.jsonl.gz', '.jsonl.zst')
SUFFIXES = PARQUET + JSONL
ROLES = config_lib.COLUMN_ROLES
DEFAULT_COLUMNS = {'content': ('content', 'text'), 'lang': ('lang', 'language'),
                   'path': ('max_stars_repo_path', 'path'), 'ext': ('ext',)}
# Dataset language names (The Stack v1/v2, StarCoder data) that differ from ours once
# lower-cased; any other name is used lower-cased when the language map knows it.
LANGUAGE_NAMES = {'c++': 'cpp', 'c#': 'csharp', 'c-sharp': 'csharp', 'c sharp': 'csharp',
                  'js': 'javascript', 'ts': 'typescript', 'golang': 'go', 'py': 'python'}
_BATCH_ROWS = 256
_CHUNK = 1 << 20


def parse_columns(spec: str) -> dict[str, str]:
  """'content=code,lang=language_name' -> {'content': 'code', 'lang': 'language_name'}
  (checked by config.validate: roles from ROLES, each at most once)."""
  return config_lib.pairs(spec, 'corpus.columns')


def is_shard(path: str) -> bool:
  return path.lower().endswith(SUFFIXES)


def language_name(raw: str, known: set[str]) -> str | None:
  """A dataset's language name ("C++", "Python") -> ours ('cpp', 'python'), if we know it."""
  name = raw.strip().lower()
  name = LANGUAGE_NAMES.get(name, name)
  return name if name in known else None


@dataclasses.dataclass(frozen=True)
class Layout:
  """Which column plays each role in one shard (None: the shard has no such column)."""
  content: str
  lang: str | None
  path: str | None
  ext: str | None

  def columns(self) -> list[str]:
    return list(dict.fromkeys(c for c in (self.content, self.lang, self.path, self.ext) if c))


def layout(path: str, names: list[str], mapping: dict[str, str], need_language: bool) -> Layout:
  """Resolves the roles against a shard's column names; a missing column is a ShardError."""
  chosen = {}
  for role in ROLES:
    if role in mapping:
      if mapping[role] not in names:
        raise ShardError(f'{path}: no column {mapping[role]!r} (corpus.columns {role}='
                         f'{mapping[role]}); it has {", ".join(names) or "none"}')
      chosen[role] = mapping[role]
    else:
      chosen[role] = next((c for c in DEFAULT_COLUMNS[role] if c in names), None)
  if chosen['content'] is None:
    looked = ' or '.join(DEFAULT_COLUMNS['content'])
    raise ShardError(f'{path}: no content column (looked for {looked}); it has '
                     f'{", ".join(names) or "none"}; map yours with corpus.columns=content=NAME')
  if need_language and not (chosen['lang'] or chosen['path'] or chosen['ext']):
    raise ShardError(f'{path}: no language column (lang or language), path or ext column; map '
                     'one with corpus.columns (e.g. lang=NAME) or give the source as PATH=LANG')
  return Layout(**chosen)


@dataclasses.dataclass
class Row:
  path: str  # the row's own path column, else '<shard>:<row>'
  lang: str | None  # the dataset's language name, as written there
  ext: str | None
  data: bytes


def _text(value, where: str, column: str) -> bytes:
  if value is None:
    return b''
  if isinstance(value, bytes):
    return value
  if isinstance(value, str):
    return value.encode('utf-8', 'surrogatepass')
  raise ShardError(f'{where}: column {column!r} holds {type(value).__name__}, expected text')


# Parquet ------------------------------------------------------------------------------------

def parquet_file(path: str):
  import pyarrow as pa  # heavy: Parquet shards only
  import pyarrow.parquet as pq  # heavy: Parquet shards only
  try:
    return pq.ParquetFile(path)
  except (pa.ArrowException, OSError) as e:
    raise ShardError(f'{path}: not a readable Parquet file (truncated or corrupt?): '
                     f'{str(e).splitlines()[0] if str(e) else type(e).__name__}') from e


def parquet_row_groups(path: str, target_bytes: int) -> list[tuple[tuple[int, ...], int]]:
  """Row groups batched into work units of about target_bytes: [(row group ids, bytes)]."""
  meta = parquet_file(path).metadata
  units, group, size = [], [], 0
  for i in range(meta.num_row_groups):
    group.append(i)
    size += meta.row_group(i).total_byte_size
    if size >= target_bytes:
      units.append((tuple(group), size))
      group, size = [], 0
  if group:
    units.append((tuple(group), size))
  return units


def parquet_layout(path: str, mapping: dict[str, str], need_language: bool) -> Layout:
  return layout(path, parquet_file(path).schema_arrow.names, mapping, need_language)


def read_parquet(path: str, name: str, row_groups: tuple[int, ...], lay: Layout) -> Iterator[Row]:
  """Rows of some row groups of one Parquet file, a record batch at a time."""
  import pyarrow as pa  # heavy: Parquet shards only
  f = parquet_file(path)
  first = sum(f.metadata.row_group(i).num_rows for i in range(row_groups[0])) if row_groups else 0
  row = first
  try:
    for batch in f.iter_batches(batch_size=_BATCH_ROWS, row_groups=list(row_groups),
                                columns=lay.columns(), use_threads=False):
      cols = {c: batch.column(c).to_pylist() for c in lay.columns()}
      for i, value in enumerate(cols[lay.content]):
        where = f'{path} row {row + i}'
        yield Row(_get(cols, lay.path, i) or f'{name}:{row + i}', _get(cols, lay.lang, i),
                  _get(cols, lay.ext, i), _text(value, where, lay.content))
      row += batch.num_rows
  except (pa.ArrowException, OSError) as e:
    raise ShardError(f'{path}: unreadable at row {row} (truncated or corrupt?): '
                     f'{str(e).splitlines()[0]}') from e


def _get(cols: dict[str, list], column: str | None, i: int) -> str | None:
  if column is None:
    return None
  value = cols[column][i]
  return None if value is None else str(value)


# JSON Lines ---------------------------------------------------------------------------------

def _chunks(path: str) -> Iterator[bytes]:
  """Decompressed bytes of a .jsonl[.gz|.zst] file; a stream cut short raises ShardError."""
  lower = path.lower()
  with open(path, 'rb') as raw:
    try:
      if lower.endswith('.gz'):
        with gzip.open(raw) as f:
          yield from iter(lambda: f.read(_CHUNK), b'')
      elif lower.endswith('.zst'):
        yield from _zstd_chunks(raw, path)
      else:
        yield from iter(lambda: raw.read(_CHUNK), b'')
    except (EOFError, OSError, zlib.error) as e:
      raise ShardError(f'{path}: truncated or corrupt ({e})') from e


def _zstd_chunks(raw, path: str) -> Iterator[bytes]:
  # zstandard's stream reader stops quietly at a cut; a decompressobj says whether the frame ended.
  import zstandard  # .zst shards only
  dctx, d = zstandard.ZstdDecompressor(), None
  try:
    for data in iter(lambda: raw.read(_CHUNK), b''):
      while data:
        if d is None or d.eof:
          d = dctx.decompressobj()
        out = d.decompress(data)
        if out:
          yield out
        data = d.unused_data if d.eof else b''
  except zstandard.ZstdError as e:
    raise ShardError(f'{path}: zstd stream is corrupt ({e})') from e
  if d is not None and not d.eof:
    raise ShardError(f'{path}: zstd stream is truncated (the last frame does not end)')


def _lines(path: str) -> Iterator[bytes]:
  rest = b''
  for chunk in _chunks(path):
    parts = (rest + chunk).split(b'\n')
    rest = parts.pop()
    yield from parts
  if rest:
    yield rest


def _records(path: str) -> Iterator[tuple[int, dict]]:
  for n, line in enumerate(_lines(path), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError as e:
      raise ShardError(f'{path} line {n}: not valid JSON (a truncated shard?): {e}') from e
    if not isinstance(record, dict):
      raise ShardError(f'{path} line {n}: expected a JSON object, got {type(record).__name__}')
    yield n, record


def jsonl_layout(path: str, mapping: dict[str, str], need_language: bool) -> Layout:
  """The layout of the first record (later records lacking a mapped field fail on reading)."""
  for _, record in _records(path):
    return layout(path, list(record), mapping, need_language)
  return Layout('content', None, None, None)  # an empty shard: nothing to read


def read_jsonl(path: str, name: str, mapping: dict[str, str]) -> Iterator[Row]:
  """Rows of one JSON Lines file, a line at a time; each record's fields are found by name."""
  for n, record in _records(path):
    where = f'{path} line {n}'
    missing = [column for column in mapping.values() if column not in record]
    if missing:
      raise ShardError(f'{where}: record has no {missing[0]!r} field (corpus.columns)')
    content = _column(record, 'content', mapping)
    if content is None:
      raise ShardError(f'{where}: record has no '
                       f'{" or ".join(map(repr, DEFAULT_COLUMNS["content"]))} field')
    lang, rel, ext = (_column(record, role, mapping) for role in ('lang', 'path', 'ext'))
    yield Row(_str(record, rel) or f'{name}:{n}', _str(record, lang), _str(record, ext),
              _text(record[content], where, content))


def _column(record: dict, role: str, mapping: dict[str, str]) -> str | None:
  names = (mapping[role],) if role in mapping else DEFAULT_COLUMNS[role]
  return next((c for c in names if c in record), None)


def _str(record: dict, column: str | None) -> str | None:
  value = record.get(column) if column else None
  return None if value is None else str(value)


def folder_shards(entries: list[tuple[str, int]]) -> list[str] | None:
  """The shard files of a folder when shards are most of its bytes (a dataset folder: other
  files such as README.md or a loading script are ignored), else None (a source tree)."""
  total = sum(size for _, size in entries)
  shards = [(rel, size) for rel, size in entries if is_shard(rel)]
  if not shards or 2 * sum(size for _, size in shards) < total:
    return None
  return sorted(rel for rel, _ in shards)
