"""A deterministic synthetic corpus in several 'languages', for tests and the training core.

Each language is a sparse bigram process over its own slice of the vocabulary mixed with a
shared slice, so a model can learn it (loss falls well below log V) and per-language losses
differ. Planted languages (data/planted.py) move a real language's documents into an id range of
their own; the shared slice plays the part of the anchors 'partial' keeps. Batch i is a pure
function of (seed, i): the iterator state is just the next index; the validation split starts
at VALIDATION_START, a batch training never reaches.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax import data as data_lib
from babel_jax.data import planted
from babel_jax.data.batch import pack_documents

_BRANCHING = 4  # likely successors per token: keeps the entropy low enough to learn fast.
VALIDATION_START = 10**9  # the validation split's first batch


class SyntheticSource:
  """Iterator of packed batches drawn from per-language bigram processes."""

  def __init__(self, languages: tuple[str, ...], weights: tuple[float, ...], vocab_size: int,
               batch_size: int, seq_len: int, mean_doc_len: int, seed: int,
               process_index: int = 0, process_count: int = 1,
               plants: Sequence[planted.Planted] = (), base: int = 0, split: str = 'train'):
    plants = {p.name: p for p in plants if p.name in languages}
    real = [lang for lang in languages if lang not in plants]
    # Real languages use ids below `base`; planted language k the range above it (planted.py).
    # `base` 0: the vocabulary holds every range (a primary run before growth passes its own).
    base = base or vocab_size // (max((p.index + 1 for p in plants.values()), default=0) + 1)
    if base < 16 * len(real):
      raise ValueError(f'synthetic data needs vocab_size >= {16 * len(real)} per id range for '
                       f'{len(real)} languages, got {vocab_size} for {len(languages)}')
    if batch_size % process_count:
      raise ValueError(f'batch_size {batch_size} not divisible by {process_count} processes')
    self.languages = tuple(languages)
    self.weights = np.asarray(weights, np.float64)
    self.batch_size, self.seq_len = batch_size, seq_len
    self.mean_doc_len, self.seed = mean_doc_len, seed
    self.process_index, self.process_count = process_index, process_count
    self.index = VALIDATION_START if split == 'validation' else 0
    # The languages themselves do not depend on the seed: runs with other seeds see the same
    # languages (sampled differently), as with a real corpus.
    rng = np.random.default_rng(0xDA7A)
    shared = np.arange(1, base // 4)
    per_lang = np.array_split(np.arange(base // 4, base), len(real))
    self._vocab = {lang: np.concatenate([shared, own]) for lang, own in zip(real, per_lang)}
    # successors[lang][t] lists the likely next tokens (indices into that language's vocab).
    self._succ = {lang: rng.integers(0, len(v), size=(len(v), _BRANCHING))
                  for lang, v in self._vocab.items()}
    # A planted language moves its source's documents; 'partial' keeps the shared slice.
    movable = np.arange(base) >= base // 4
    self.planted = {name: (p, planted.id_map(p, base, movable)) for name, p in plants.items()}
    missing = [p.of for p in plants.values() if p.of not in self._vocab]
    if missing:
      raise ValueError(f'planted languages need their sources among the languages: {missing}')

  def _document(self, rng: np.random.Generator, lang: str) -> np.ndarray:
    if lang in self.planted:
      p, mapping = self.planted[lang]
      return planted.transform(p, mapping, self._document(rng, p.of))
    n = max(2, int(rng.exponential(self.mean_doc_len)))
    vocab, succ = self._vocab[lang], self._succ[lang]
    idx = np.empty(n, np.int64)
    idx[0] = rng.integers(len(vocab))
    choices = rng.integers(0, _BRANCHING, size=n)
    for i in range(1, n):
      idx[i] = succ[idx[i - 1], choices[i]]
    return vocab[idx].astype(np.int32)

  def batch(self, index: int) -> dict[str, np.ndarray]:
    """The global batch `index`, restricted to this process's rows."""
    rng = np.random.default_rng([self.seed, index])
    need = self.batch_size * self.seq_len
    docs, total = [], 0
    while total < need + self.seq_len:
      lang = int(rng.choice(len(self.languages), p=self.weights))
      doc = self._document(rng, self.languages[lang])
      docs.append((doc, lang))
      total += len(doc) - 1
    full = pack_documents(docs, self.batch_size, self.seq_len)
    rows = self.batch_size // self.process_count
    sl = slice(self.process_index * rows, (self.process_index + 1) * rows)
    return {k: v[sl] for k, v in full.items()}

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    out = self.batch(self.index)
    self.index += 1
    return out

  def get_state(self) -> dict[str, Any]:
    return {'index': self.index}

  def set_state(self, state: dict[str, Any]) -> None:
    self.index = int(state['index'])


def from_config(cfg, process_index: int = 0, process_count: int = 1,
                split: str = 'train') -> SyntheticSource:
  """The synthetic source of `cfg` for one split (data.split_settings)."""
  spec, batch_size = data_lib.split_settings(cfg, split)
  languages = cfg.data.languages
  return SyntheticSource(languages, tuple(spec.vector(languages)), cfg.model.vocab_size,
                         batch_size, cfg.data.seq_len, cfg.data.mean_doc_len, cfg.seed,
                         process_index, process_count, data_lib.plants(cfg),
                         base=cfg.tokenizer.vocab_size, split=split)
