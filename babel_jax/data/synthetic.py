"""A deterministic synthetic corpus in several 'languages', for tests and the training core.

Each language is a sparse bigram process over its own slice of the vocabulary mixed with a
shared slice, so a model can learn it (loss falls well below log V) and per-language losses
differ. Batch i is a pure function of (seed, i): the iterator state is just the next index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from babel_jax.data.batch import pack_documents

_BRANCHING = 4  # likely successors per token: keeps the entropy low enough to learn fast.


class SyntheticSource:
  """Iterator of packed batches drawn from per-language bigram processes."""

  def __init__(self, languages: tuple[str, ...], weights: tuple[float, ...], vocab_size: int,
               batch_size: int, seq_len: int, mean_doc_len: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    if vocab_size < 16 * len(languages):
      raise ValueError(f'synthetic data needs vocab_size >= {16 * len(languages)} for '
                       f'{len(languages)} languages, got {vocab_size}')
    if batch_size % process_count:
      raise ValueError(f'batch_size {batch_size} not divisible by {process_count} processes')
    self.languages = tuple(languages)
    self.weights = np.asarray(weights, np.float64)
    self.batch_size, self.seq_len = batch_size, seq_len
    self.mean_doc_len, self.seed = mean_doc_len, seed
    self.process_index, self.process_count = process_index, process_count
    self.index = 0
    # The languages themselves do not depend on the seed: runs with other seeds see the same
    # languages (sampled differently), as with a real corpus.
    rng = np.random.default_rng(0xDA7A)
    shared = np.arange(1, vocab_size // 4)
    per_lang = np.array_split(np.arange(vocab_size // 4, vocab_size), len(languages))
    self._vocab = [np.concatenate([shared, own]) for own in per_lang]
    # successors[lang][t] lists the likely next tokens (indices into that language's vocab).
    self._succ = [rng.integers(0, len(v), size=(len(v), _BRANCHING)) for v in self._vocab]

  def _document(self, rng: np.random.Generator, lang: int) -> np.ndarray:
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
      doc = self._document(rng, lang)
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
