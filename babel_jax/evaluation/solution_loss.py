"""Solution loss: how well a checkpoint predicts correct solutions of translated HumanEval problems.

For every language with hand-written correct solutions (evaluation/data/solutions/, each checked
in the sandbox by validate.py), the sequence [BOS] + prompt + correct body is scored with the
per-token loss of the body alone, given the prompt. Unlike pass@1 it is not zero for a small
model, and unlike the held-out loss it is measured on the benchmark's own problems, so it can
serve as the performance curve of a new language (`dynamics.performance = 'solutions'`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from babel_jax.data import batch as batch_lib
from babel_jax.errors import EvaluationError
from babel_jax.evaluation import validate


def rows(tokenizer, languages: list[str], max_len: int, bos: int
         ) -> tuple[list[dict[str, np.ndarray]], dict[str, int]]:
  """One scored row per (language, solved problem): tokens, targets (the body's next tokens, 0
  elsewhere), positions, segment_ids, lang_ids (and target_mask where id 0 is a token); and the problems kept per language. Languages
  without solutions are left out; a problem longer than max_len is skipped."""
  out, kept = [], {}
  masked = batch_lib.zero_is_token(tokenizer)
  for k, lang in enumerate(languages):
    try:
      records = validate.records_by_task(lang)
      bodies = [(t, body) for t, kind, body in validate.solutions(lang) if kind == 'correct']
    except (OSError, KeyError, EvaluationError):
      continue
    for task, body in bodies:
      prompt = [bos, *tokenizer.encode(records[task]['prompt'])]
      seq = prompt + tokenizer.encode(body)
      if len(seq) > max_len + 1 or len(seq) == len(prompt):
        continue
      n = len(seq) - 1
      targets = np.zeros(n, np.int32)
      targets[len(prompt) - 1:] = seq[len(prompt):]  # predicted from the last prompt token on
      out.append({'tokens': np.asarray(seq[:-1], np.int32), 'targets': targets,
                  'positions': np.arange(n, dtype=np.int32),
                  'segment_ids': np.ones(n, np.int32), 'lang_ids': np.full(n, k, np.int32)})
      if masked:  # id 0 is a token: the body's positions, explicitly (data/batch.py)
        out[-1][batch_lib.TARGET_MASK] = (np.arange(n) >= len(prompt) - 1).astype(np.int32)
      kept[lang] = kept.get(lang, 0) + 1
  return out, kept


def summarise_solution_loss(loss_sum_G, count_G, languages: list[str], kept: dict[str, int]) -> dict[str, Any]:
  """Per language with solutions: mean per-token loss, tokens and problems scored."""
  return {lang: {'loss': float(loss_sum_G[k] / count_G[k]), 'tokens': int(count_G[k]),
                 'problems': kept[lang]}
          for k, lang in enumerate(languages) if lang in kept and count_G[k] > 0}
