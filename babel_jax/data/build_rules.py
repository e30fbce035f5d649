"""The rules of the corpus's output that both runners apply: a document's record and split, where
shards are cut, their names and bytes, and the content hash over them.

The local builder (corpus.py) and the Beam pipeline (beam_build.py) call these same functions,
so on the same inputs and settings they write the same shards, byte for byte, and the same
content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from typing import Any, Iterable

from array_record.python import array_record_module as array_record

from babel_jax.data import manifest as manifest_lib

_LEX = re.compile(rb'\w+|[^\w\s]')


def record(data: bytes, source: str, path: str) -> bytes:
  """A shard record: JSON {"text", "source", "path"}."""
  return json.dumps({'text': data.decode('utf-8'), 'source': source, 'path': path}).encode()


def lexical_tokens(data: bytes) -> int:
  """Words and punctuation marks: the manifest's tokenizer-free size of a document."""
  return len(_LEX.findall(data))


def is_validation(d0, val_fraction: float):
  """The split from the hash's first 32 bits (an int or a numpy array of them): adding
  documents never moves old ones between train and validation."""
  return d0 % 10_000 < round(val_fraction * 10_000)


def shard_name(lang: str, split: str, i: int) -> str:
  return f'{lang}/{split}-{i:05d}.array_record'


class ShardCutter:
  """Places records, in sample order, into shards: a new shard starts once the current one holds
  shard_bytes or more of records."""

  def __init__(self, shard_bytes: int):
    self.shard_bytes, self.shard, self.size = shard_bytes, -1, 0

  def place(self, nbytes: int) -> tuple[int, bool]:
    """(shard index, whether this record starts it) for the next record of nbytes."""
    new = self.shard < 0 or self.size >= self.shard_bytes
    if new:
      self.shard, self.size = self.shard + 1, 0
    self.size += nbytes
    return self.shard, new


def open_shard(root: str, rel: str):
  return array_record.ArrayRecordWriter(os.path.join(root, rel), 'group_size:1')


def write_shard(root: str, rel: str, records: Iterable[bytes]) -> None:
  """One whole shard, written under a temporary name and renamed: a retried worker rewrites it,
  a failed one leaves no file under the shard's name."""
  path = os.path.join(root, rel)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp.{uuid.uuid4().hex}'
  writer = array_record.ArrayRecordWriter(tmp, 'group_size:1')
  try:
    for r in records:
      writer.write(r)
  finally:
    writer.close()
  os.replace(tmp, path)


def empty_language() -> dict[str, Any]:
  """A language's manifest entry before any document: per split files, bytes, tokens, shards."""
  return {key: {split: [] if key == 'shards' else 0 for split in manifest_lib.SPLITS}
          for key in ('files', 'bytes', 'lexical_tokens', 'tokens', 'shards')}


def content_hash(root: str, langs: dict[str, Any], facts: dict[str, Any] | None = None) -> str:
  """sha256 of every shard (name and bytes), then of the recorded facts, if any (a corpus
  without facts keeps the hash it always had)."""
  h = hashlib.sha256()
  for lang in sorted(langs):
    for split in manifest_lib.SPLITS:
      for rel in langs[lang]['shards'][split]:
        h.update(rel.encode())
        with open(os.path.join(root, rel), 'rb') as f:
          for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
  if facts:
    h.update(b'facts')
    h.update(json.dumps(facts, sort_keys=True).encode())
  return h.hexdigest()
