"""The batch contract between every data source and the training loop.

A batch is a dict of int32 numpy arrays, each [batch, seq_len]:
  tokens       input token ids; 0 is padding
  targets      next-token ids; 0 means 'no target here' (padding or a document's last token)
  segment_ids  1, 2, ... per packed document within a row; 0 is padding
  positions    position within the document (restarts at 0 for every packed document)
  lang_ids     index into the source's `languages`; -1 on padding
A source is an iterator of such batches that also exposes `languages` and a JSON-serialisable
`get_state()` / `set_state()` so that a resumed run sees exactly the next batch.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

import numpy as np

FIELDS = ('tokens', 'targets', 'segment_ids', 'positions', 'lang_ids')
PAD_ID = 0  # padding, and 'no target': the one padding id (tokenizer, sampling, losses)
NO_LANG = -1  # lang_ids (and row_ids) of padding


def fill_value(field: str) -> int:
  """What padding holds in a batch field: NO_LANG for lang_ids and row_ids, PAD_ID elsewhere."""
  return NO_LANG if field in ('lang_ids', 'row_ids') else PAD_ID


class DataSource(Protocol):
  languages: tuple[str, ...]

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]: ...

  def __next__(self) -> dict[str, np.ndarray]: ...

  def get_state(self) -> dict[str, Any]: ...

  def set_state(self, state: dict[str, Any]) -> None: ...


def pack_documents(docs: list[tuple[np.ndarray, int]], batch_size: int,
                   seq_len: int) -> dict[str, np.ndarray]:
  """Packs (token array, language id) documents greedily into rows; splits long documents.

  Each document of n tokens contributes n-1 (input, target) pairs. Rows are filled in order;
  leftover documents are dropped, so callers pass at least enough tokens to fill the batch.
  """
  out = {k: np.zeros((batch_size, seq_len), np.int32) for k in FIELDS}
  out['lang_ids'][:] = NO_LANG
  row, col, seg = 0, 0, 0
  for tokens, lang in docs:
    start = 0
    while start < len(tokens) - 1 and row < batch_size:
      n = min(len(tokens) - 1 - start, seq_len - col)
      seg += 1
      sl = slice(col, col + n)
      out['tokens'][row, sl] = tokens[start:start + n]
      out['targets'][row, sl] = tokens[start + 1:start + n + 1]
      out['segment_ids'][row, sl] = seg
      out['positions'][row, sl] = np.arange(n)
      out['lang_ids'][row, sl] = lang
      start += n
      col += n
      if col == seq_len:
        row, col, seg = row + 1, 0, 0
    if row == batch_size:
      break
  return out
