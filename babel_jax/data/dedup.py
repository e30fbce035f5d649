"""Exact dedup, per-language budgets and near dedup over the build's document index.

All three work on numpy rows (`scan.INDEX`, ~46 bytes a document), never on the documents:
- exact dedup keeps, of documents with the same sha256 (first 128 bits), the earliest one read;
- a budget keeps the documents with the smallest content-hash keys while the running sums of
  bytes, tokens and files stay within it (at least one document), a sample that does not depend
  on reading order and only grows when the budget grows;
- near dedup is MinHash LSH (datasketch's MinHash, word 5-gram shingles, its b x r banding for
  the threshold) with the bands kept on disk: a worker turns each document into b band hashes,
  written to a memmap; the main process then reads one band column at a time, sorts it to find
  the buckets that hold more than one document, and drops, in key order, every document that
  shares a bucket with an earlier kept one, as inserting into and querying an in-memory
  `MinHashLSH` would. Memory: one band column with its sort order (about 32 bytes a document
  while it is sorted) plus the members of shared buckets (at most 8 b bytes a document, b = 8
  at the default threshold), instead of an in-memory LSH index's kilobytes a document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax.data import scan
from babel_jax.errors import ConfigError

_WORDS = re.compile(rb'\w+')
_BANDERS: dict[tuple[float, int], 'Bander'] = {}


def first_copies(index: np.ndarray) -> np.ndarray:
  """Mask of the rows to keep: the earliest (unit, item) of every distinct content hash."""
  if not len(index):
    return np.ones(0, bool)
  order = np.lexsort((index['item'], index['unit'], index['r1'], index['key'], index['d0']))
  s = index[order]
  same = ((s['d0'][1:] == s['d0'][:-1]) & (s['key'][1:] == s['key'][:-1]) &
          (s['r1'][1:] == s['r1'][:-1]))
  keep = np.ones(len(index), bool)
  keep[order[1:][same]] = False
  return keep


# The sample order: content-hash key, then the rest of the hash, then the reading position. A
# row's tuple of these fields sorts as sample_order sorts rows (the Beam runner sorts tuples).
SAMPLE_FIELDS = ('key', 'd0', 'r1', 'unit', 'item')
HASH_FIELDS = ('d0', 'key', 'r1')  # the first 128 bits of the sha256: equal means a copy


def sample_order(index: np.ndarray) -> np.ndarray:
  """Rows by content-hash key (ties: rest of the hash, then reading position)."""
  return np.lexsort(tuple(index[f] for f in reversed(SAMPLE_FIELDS)))


@dataclasses.dataclass(frozen=True)
class Budget:
  bytes: int = 0  # 0: unlimited
  tokens: int = 0
  files: int = 0

  def take(self, rows: np.ndarray) -> int:
    """How many leading rows (in sample order) fit."""
    n = len(rows)
    for limit, sizes in ((self.bytes, rows['nbytes']), (self.tokens, rows['tokens'])):
      if limit and n:
        fit = int(np.searchsorted(np.cumsum(sizes, dtype=np.int64), limit, side='right'))
        n = min(n, max(fit, 1))
    return min(n, self.files) if self.files else n


def parse_modes(spec: str) -> set[str]:
  """corpus.dedup: 'exact,near' (default), 'exact', 'near' or 'none' (checked by validate)."""
  modes = set(config_lib.items(spec))
  return set() if modes == {'none'} else modes


def parse_table(spec: str, field: str, known: set[str] | None = None) -> dict[str, int]:
  """'python=11e9,php=23e9' -> {'python': 11_000_000_000, 'php': 23_000_000_000}; every
  language must be one the language map knows."""
  out = config_lib.budgets(spec, field)
  unknown = [lang for lang in out if known is not None and lang not in known]
  if unknown:
    raise ConfigError(f'{field} names {unknown[0]!r}, which no extension maps to; known: '
                      f'{sorted(known)}')
  return out


class Bander:
  """Document -> b band hashes of its MinHash; equal bands mean an LSH bucket collision."""

  def __init__(self, threshold: float, num_perm: int):
    from datasketch import MinHash, MinHashLSH  # heavy (scipy): near-dedup only
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    self.b, self.r, self.num_perm = lsh.b, lsh.r, num_perm
    self._minhash = MinHash
    proto = MinHash(num_perm=num_perm, seed=1)
    self._perms, self._scheme = proto.permutations, proto.scheme

  @classmethod
  def get(cls, threshold: float, num_perm: int) -> 'Bander':
    if (threshold, num_perm) not in _BANDERS:
      _BANDERS[threshold, num_perm] = cls(threshold, num_perm)
    return _BANDERS[threshold, num_perm]

  def minhash(self, data: bytes, shingle: int = 5):
    words = _WORDS.findall(data)
    grams = [b' '.join(words[i:i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    m = self._minhash(num_perm=self.num_perm, seed=1, permutations=self._perms,
                      scheme=self._scheme)
    m.update_batch(grams or [b''])
    return m

  def bands(self, data: bytes) -> np.ndarray:
    h = self.minhash(data).hashvalues
    return np.array([int.from_bytes(hashlib.blake2b(h[i * self.r:(i + 1) * self.r].tobytes(),
                                                    digest_size=8).digest(), 'little')
                     for i in range(self.b)], np.uint64)


def band_task(task: tuple[Any, ...]) -> tuple[int, np.ndarray]:
  """Worker: the band hashes of a chunk of documents, read back from the spill files."""
  chunk_id, spill_dir, rows, threshold, num_perm = task
  bander = Bander.get(threshold, num_perm)
  out = np.zeros((len(rows), bander.b), np.uint64)
  with scan.SpillReader(spill_dir) as spill:
    for i, row in enumerate(rows):
      out[i] = bander.bands(spill.data(row))
  return chunk_id, out


def near_duplicates(bands: np.ndarray) -> np.ndarray:
  """Mask of the rows to drop: rows in priority order, bands [n, b] (a memmap is fine)."""
  n, b = bands.shape
  ids_t = np.int32 if n * b < 2**31 else np.int64
  members, buckets, n_buckets = [], [], 0
  for i in range(b):
    col = np.asarray(bands[:, i])
    order = np.argsort(col, kind='stable')
    same = col[order][1:] == col[order][:-1]
    shared = np.zeros(n, bool)
    shared[1:] |= same
    shared[:-1] |= same
    starts = shared & ~np.concatenate(([False], same))
    ids = np.cumsum(starts) - 1 + n_buckets
    members.append(order[shared].astype(ids_t))
    buckets.append(ids[shared].astype(ids_t))
    n_buckets += int(starts.sum())
    del col, order, same, shared, starts, ids
  docs = np.concatenate(members) if members else np.zeros(0, ids_t)
  bucket = np.concatenate(buckets) if buckets else np.zeros(0, ids_t)
  return drop_in_order(docs, bucket, n, n_buckets)


def drop_in_order(docs: np.ndarray, bucket: np.ndarray, n: int, n_buckets: int) -> np.ndarray:
  """The LSH decision, shared by both runners: (document, bucket) memberships of the buckets
  that hold more than one document, documents numbered 0..n-1 in priority order, buckets
  0..n_buckets-1 -> mask of the documents to drop. In priority order, a document is dropped when
  one of its buckets already holds a kept document (a greedy pass, not connected components:
  in a chain A~B~C with A and C dissimilar, A and C are kept)."""
  by_doc = np.argsort(docs, kind='stable')
  docs, bucket = docs[by_doc], bucket[by_doc]
  dropped = np.zeros(n, bool)
  taken = np.zeros(n_buckets, bool)  # the bucket holds a kept document
  uniq, first = np.unique(docs, return_index=True)
  ends = np.append(first[1:], len(docs))
  for d, s, e in zip(uniq.tolist(), first.tolist(), ends.tolist()):
    mine = bucket[s:e]
    if taken[mine].any():
      dropped[d] = True
    else:
      taken[mine] = True
  return dropped
