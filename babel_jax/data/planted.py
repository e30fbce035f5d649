"""Planted languages: controls with a known answer, derived from the primary language's tokens.

Each is the primary's token stream moved into an id range of its own (the vocabulary grows to
hold it), so every instrument can be asked a question whose answer we know:
  <primary>_clone      every id mapped by a fixed, seeded bijection into a disjoint range:
                       exactly the primary's structure, no shared surface form (positive control).
  <primary>_partial    a seeded share (`corpus.planted_share`, default all) of the identifier and
                       keyword pieces remapped; whitespace, punctuation, digits and bytes shared,
                       as real language pairs share anchors.
  <primary>_scrambled  disjoint ids as the clone, and the tokens of each document shuffled
                       (seeded by the document's content): unigram statistics kept, structure
                       destroyed (negative control).
Planted language k (in `KINDS` order of the ones used) owns ids [base * (k + 1), base * (k + 2)),
`base` the real vocabulary's size. Id 0 (padding, "no target") is never moved.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Sequence

import numpy as np

from babel_jax import config as config_lib
from babel_jax.errors import DataError

KINDS = config_lib.PLANTED_KINDS


@dataclasses.dataclass(frozen=True)
class Planted:
  """How one planted language is made (recorded in the corpus manifest)."""
  kind: str  # one of KINDS
  of: str  # the primary language it is derived from
  index: int  # its id range: [base * (index + 1), base * (index + 2))
  seed: int
  share: float = 1.0  # 'partial': the share of identifier / keyword pieces remapped

  @property
  def name(self) -> str:
    return f'{self.of}_{self.kind}'


def parse(name: str) -> tuple[str, str] | None:
  """'python_clone' -> ('python', 'clone'); None for a name that is no planted language."""
  for kind in KINDS:
    if name.endswith('_' + kind) and len(name) > len(kind) + 1:
      return name[:-len(kind) - 1], kind
  return None


def specs(names: Sequence[str], seed: int, share: float) -> list[Planted]:
  """The planted languages `names` (e.g. corpus.planted), with id ranges assigned in KINDS
  order (then by source language), so a name's range does not depend on how it was listed."""
  parsed = []
  for name in names:
    found = parse(name)
    if found is None:
      raise DataError(f'{name!r} is no planted language: expected <language>_<kind>, kind one '
                      f'of {KINDS}')
    parsed.append(found)
  order = sorted(set(parsed), key=lambda p: (KINDS.index(p[1]), p[0]))
  return [Planted(kind, of, i, seed, share) for i, (of, kind) in enumerate(order)]


def names(kinds: Sequence[str], primary: str) -> list[str]:
  """The planted languages of these kinds made from `primary`, in KINDS order."""
  return [f'{primary}_{kind}' for kind in KINDS if kind in kinds]


def vocab_size(base: int, count: int) -> int:
  """The model vocabulary that holds `count` planted ranges beside `base` real ids."""
  return base * (count + 1)


def id_map(p: Planted, base: int, movable_V: np.ndarray) -> np.ndarray:
  """int32 [base]: the planted id of every real id. `movable_V` marks the ids `p` may move
  (for 'partial', the identifier and keyword pieces); the clone and scrambled kinds move every
  id but padding."""
  rng = np.random.default_rng([p.seed, p.index, KINDS.index(p.kind)])
  out = np.arange(base, dtype=np.int32)
  offset = base * (p.index + 1)
  if p.kind == 'partial':
    candidates = np.flatnonzero(movable_V[:base])
    candidates = candidates[candidates > 0]
    k = int(round(p.share * len(candidates)))
    moved = np.sort(rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]
  else:
    moved = np.arange(1, base)
  out[moved] = offset + rng.permutation(moved)
  return out


def inverse(maps: Sequence[np.ndarray], vocab: int) -> np.ndarray:
  """int32 [vocab]: for every planted id, the real id it stands for; -1 for every other id."""
  inv = np.full(vocab, -1, np.int32)
  for m in maps:
    moved = m != np.arange(len(m))
    inv[m[moved]] = np.flatnonzero(moved)
  return inv


def transform(p: Planted, mapping: np.ndarray, tokens: np.ndarray) -> np.ndarray:
  """One document of the primary ([BOS] + ids + [EOS]) as planted language `p`. The scrambled
  kind shuffles the tokens between BOS and EOS with a generator seeded by the document itself,
  so the result does not depend on reading order."""
  tokens = np.asarray(tokens)
  if p.kind == 'scrambled' and len(tokens) > 3:
    rng = np.random.default_rng([p.seed, zlib.crc32(tokens.tobytes())])
    tokens = tokens.copy()
    tokens[1:-1] = rng.permutation(tokens[1:-1])
  return mapping[tokens].astype(np.int32)


def identifier_pieces(pieces: Sequence[str]) -> np.ndarray:
  """bool per sentencepiece piece: identifier and keyword pieces (those with a letter), which
  'partial' may move; whitespace, punctuation, digits, byte pieces and specials stay shared."""
  def movable(piece: str) -> bool:
    if piece.startswith('<') and piece.endswith('>'):  # <unk>, <s>, </s>, <0x41>
      return False
    return any(ch.isalpha() for ch in piece)
  return np.asarray([movable(p) for p in pieces], bool)
