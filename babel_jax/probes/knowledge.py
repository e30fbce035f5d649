"""The planted-knowledge probe: how well a checkpoint writes the body of a synthetic fact.

Facts (data/facts.py) are taught in one language only (the corpus manifest's `facts`); each
taught fact has an untaught twin of the same form with other constants. For every language of a
run that `facts.render` writes, and every planted language of the run (the planted copy of the
facts' rendering in its source language, moved by its id map with `planted.transform`), one row
per fact: [BOS] + tokens(head + signature) + tokens(body), cut to the training rows' length, with
the loss counted on the body's tokens only. The reading per language (result.KnowledgeReading):
each fact's per-token body loss, taught and untaught in twin order; untaught minus taught is the
knowledge the model has of the taught facts in that language (retention in the taught language,
knowledge transferred in any other).

The text is encoded in one piece, as training documents are: the body's tokens are those after
the longest common prefix of tokens(head + signature) and tokens(head + signature + body), so a
piece that straddles the boundary counts as the body's. The scrambled copy's tokens are shuffled
by `planted.transform` like its training documents; its loss is read on the positions the body
holds before the shuffle. All rows go through one jitted scan (prober.py); `row_sums` gives each
row's loss sum and token count by its row index, `summarise` turns them into readings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.data import facts as facts_lib
from babel_jax.data import manifest as manifest_lib
from babel_jax.data import planted as planted_lib
from babel_jax.model import Transformer
from babel_jax.probes.result import KnowledgeReading
from babel_jax.train import losses


def from_manifest(manifest: Mapping[str, Any]) -> tuple[facts_lib.FactSet, str] | None:
  """The corpus's facts (read by data/manifest.py `recorded_facts`, the manifest layout's owner)
  and the language that teaches them; None when it records no taught fact. An entry holding the
  set under `set` is read too."""
  info = manifest.get('facts')
  if not info:
    return None
  fact_set = manifest_lib.recorded_facts({'facts': info.get('set', info)})
  if not fact_set.taught:
    return None
  return fact_set, str(info.get('language', 'python'))


def split_encode(tokenizer, prompt: str, body: str) -> tuple[list[int], list[int]]:
  """(prompt ids, body ids) of prompt + body encoded in one piece (as training documents are):
  the body's ids follow the longest common prefix with the prompt's own encoding."""
  head, full = list(tokenizer.encode(prompt)), list(tokenizer.encode(prompt + body))
  k = 0
  while k < min(len(head), len(full)) and head[k] == full[k]:
    k += 1
  return full[:k], full[k:]


@dataclasses.dataclass(frozen=True)
class Layout:
  """Which row is which: per language, the taught and untaught fact names it scores (twin
  order) and the row indices of each; `rows` in total."""
  languages: tuple[str, ...]
  taught_names: Mapping[str, tuple[str, ...]]
  untaught_names: Mapping[str, tuple[str, ...]]
  taught_rows: Mapping[str, tuple[int, ...]]
  untaught_rows: Mapping[str, tuple[int, ...]]
  rows: int
  dropped: Mapping[str, int]  # per language: fact pairs whose body starts beyond the row length


def _row(seq: Sequence[int], body_start: int, max_len: int, lang_id: int, row_id: int,
         masked: bool = False) -> dict[str, np.ndarray] | None:
  """One scored row: tokens seq[:-1], targets the body's next tokens (0 elsewhere), cut to
  max_len positions; None when no body token fits. `masked`: with target_mask (1 on the body),
  for tokenizers where id 0 is a token (batch.zero_is_token)."""
  seq = np.asarray(seq, np.int32)[:max_len + 1]
  if len(seq) <= body_start:
    return None
  n = len(seq) - 1
  targets = np.zeros(n, np.int32)
  targets[body_start - 1:] = seq[body_start:]  # predicted from the last prompt token on
  out = {'tokens': seq[:-1].copy(), 'targets': targets,
         'positions': np.arange(n, dtype=np.int32), 'segment_ids': np.ones(n, np.int32),
         'lang_ids': np.full(n, lang_id, np.int32), 'row_ids': np.full(n, row_id, np.int32)}
  if masked:
    out[batch_lib.TARGET_MASK] = (np.arange(n) >= body_start - 1).astype(np.int32)
  return out


def sequences(tokenizer, fact_set: facts_lib.FactSet, languages: Sequence[str],
              planted: Mapping[str, tuple[planted_lib.Planted, np.ndarray]], vocab: int,
              bos: int, eos: int) -> dict[str, list[tuple[np.ndarray, int, np.ndarray, int]]]:
  """Per scorable language: (taught seq, its body start, untaught seq, its body start) per fact
  pair, uncut. Real languages `facts.render` writes; planted ones whose source it writes and
  whose id block the model's `vocab` holds."""
  cache: dict[str, list] = {}

  def rendered(lang: str) -> list:
    if lang not in cache:
      pairs = []
      for taught, untaught in zip(fact_set.taught, fact_set.untaught):
        pair = []
        for fact in (taught, untaught):
          r = facts_lib.render(fact, lang, [])
          p, b = split_encode(tokenizer, r.head + r.signature, r.body)
          pair.append(([bos, *p, *b, eos], 1 + len(p)))
        pairs.append(pair)
      cache[lang] = pairs
    return cache[lang]

  out = {}
  for lang in languages:
    if lang in facts_lib.LANGUAGES:
      out[lang] = [(np.asarray(t[:-1], np.int32), ts, np.asarray(u[:-1], np.int32), us)
                   for (t, ts), (u, us) in rendered(lang)]
    elif lang in planted:
      p, mapping = planted[lang]
      if p.of not in facts_lib.LANGUAGES or len(mapping) * (p.index + 2) > vocab:
        continue
      # The whole [BOS] ... [EOS] document goes through transform, as training documents do
      # (the scrambled copy shuffles between them); the EOS is dropped afterwards.
      def move(seq, p=p, mapping=mapping):
        return planted_lib.transform(p, mapping, np.asarray(seq, np.int32))[:-1]
      out[lang] = [(move(t), ts, move(u), us) for (t, ts), (u, us) in rendered(p.of)]
  return out


def rows(tokenizer, fact_set: facts_lib.FactSet, languages: Sequence[str],
         planted: Mapping[str, tuple[planted_lib.Planted, np.ndarray]], max_len: int,
         vocab: int, bos: int, eos: int) -> tuple[list[dict[str, np.ndarray]], Layout]:
  """The scored rows of every scorable language (see `sequences`), lang_ids its index in
  `languages`, and their layout. A fact pair is kept in a language only when both bodies start
  within max_len positions."""
  out: list[dict[str, np.ndarray]] = []
  names: dict[str, tuple] = {}
  index: dict[str, tuple] = {}
  dropped: dict[str, int] = {}
  masked = batch_lib.zero_is_token(tokenizer)
  for lang, pairs in sequences(tokenizer, fact_set, languages, planted, vocab, bos, eos).items():
    k = list(languages).index(lang)
    kept_t, kept_u, rows_t, rows_u = [], [], [], []
    for i, (t, ts, u, us) in enumerate(pairs):
      rt = _row(t, ts, max_len, k, len(out), masked)
      ru = _row(u, us, max_len, k, len(out) + 1, masked)
      if rt is None or ru is None:
        dropped[lang] = dropped.get(lang, 0) + 1
        continue
      out += [rt, ru]
      kept_t.append(fact_set.taught[i].name)
      kept_u.append(fact_set.untaught[i].name)
      rows_t.append(rt['row_ids'][0])
      rows_u.append(ru['row_ids'][0])
    if kept_t:
      names[lang] = (tuple(kept_t), tuple(kept_u))
      index[lang] = (tuple(int(r) for r in rows_t), tuple(int(r) for r in rows_u))
  layout = Layout(tuple(names), {k: v[0] for k, v in names.items()},
                  {k: v[1] for k, v in names.items()}, {k: v[0] for k, v in index.items()},
                  {k: v[1] for k, v in index.items()}, len(out), dropped)
  return out, layout


def pad(rows_: Sequence[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
  """Rows padded to one length: no targets, no language, no row (-1) in the padding."""
  length = max(len(r['tokens']) for r in rows_)
  return [{k: np.pad(v, (0, length - len(v)), constant_values=batch_lib.fill_value(k))
           for k, v in r.items()} for r in rows_]


def row_sums(model: Transformer, params, batch, num_rows: int) -> dict[str, jax.Array]:
  """Per row index (batch['row_ids'], the same along a row; -1: padding): the summed loss of the
  scored positions (batch.target_mask) and their count, [num_rows] each (sums add across
  batches)."""
  logits_BxLxV = model_lib.forward(model, params, batch)
  xent_BxL = losses.cross_entropy(logits_BxLxV, batch['targets'])
  mask_BxL = batch_lib.target_mask(batch).astype(jnp.float32)
  row_BxR = jax.nn.one_hot(batch['row_ids'][:, 0], num_rows, dtype=jnp.float32)  # -1: zeros
  return {'loss_R': jnp.einsum('b,br->r', jnp.sum(xent_BxL * mask_BxL, axis=1), row_BxR),
          'count_R': jnp.einsum('b,br->r', jnp.sum(mask_BxL, axis=1), row_BxR)}


def summarise_knowledge(loss_R, count_R, layout: Layout,
              languages: Sequence[str] | None = None) -> dict[str, KnowledgeReading]:
  """Per language of the layout (or of `languages` among them): each fact's per-token body
  loss, taught and untaught."""
  per_token = np.asarray(loss_R, np.float64) / np.maximum(np.asarray(count_R, np.float64), 1)
  return {lang: KnowledgeReading(
      layout.taught_names[lang], tuple(float(per_token[r]) for r in layout.taught_rows[lang]),
      layout.untaught_names[lang], tuple(float(per_token[r]) for r in layout.untaught_rows[lang]))
      for lang in layout.languages if languages is None or lang in languages}
