"""The batch contract between every data source and the training loop.

A batch is a dict of int32 numpy arrays, each [batch, seq_len]:
  tokens       input token ids; 0 is padding
  targets      next-token ids; 0 means 'no target here' (padding or a document's last token)
  segment_ids  1, 2, ... per packed document within a row; 0 is padding
  positions    position within the document (restarts at 0 for every packed document)
  lang_ids     index into the source's `languages`; -1 on padding
and, only where id 0 is a real token (a Hugging Face tokenizer.json: GPT-2's '!', Pythia's
'<|endoftext|>'), one more field:
  target_mask  1 where the position's target counts, 0 elsewhere (padding, a document's last
               token, a scored row's prompt); targets there are 0 (PAD_ID) all the same
Without it (sentencepiece corpora, synthetic data: id 0 is padding, never a token) a target
counts where it is not PAD_ID. Every consumer reads this through `target_mask(batch)`.
A source is an iterator of such batches that also exposes `languages` and a JSON-serialisable
`get_state()` / `set_state()` so that a resumed run sees exactly the next batch.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

import numpy as np

FIELDS = ('tokens', 'targets', 'segment_ids', 'positions', 'lang_ids')
PAD_ID = 0  # padding, and 'no target': the one padding id (tokenizer, sampling, losses)
NO_LANG = -1  # lang_ids (and row_ids) of padding
TARGET_MASK = 'target_mask'  # the optional explicit 'target counts' field (see above)


def target_mask(batch) -> Any:
  """Where a target counts (boolean, numpy or jax like the batch): batch['target_mask'] > 0
  when the batch carries one, else targets != PAD_ID."""
  if TARGET_MASK in batch:
    return batch[TARGET_MASK] > 0
  return batch['targets'] != PAD_ID


def zero_is_token(tokenizer) -> bool:
  """Whether id 0 is a real token of `tokenizer` (None: synthetic ids, where it is not), so
  that batches of its text carry an explicit target_mask."""
  return bool(getattr(tokenizer, 'zero_is_token', False))


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
                   seq_len: int, masked: bool = False) -> dict[str, np.ndarray]:
  """Packs (token array, language id) documents greedily into rows; splits long documents.

  Each document of n tokens contributes n-1 (input, target) pairs. Rows are filled in order;
  leftover documents are dropped, so callers pass at least enough tokens to fill the batch.
  `masked`: the batch also carries target_mask (for tokenizers where id 0 is a token).
  """
  fields = FIELDS + ((TARGET_MASK,) if masked else ())
  out = {k: np.zeros((batch_size, seq_len), np.int32) for k in fields}
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
      if masked:
        out[TARGET_MASK][row, sl] = 1
      start += n
      col += n
      if col == seq_len:
        row, col, seg = row + 1, 0, 0
    if row == batch_size:
      break
  return out
