"""The logit-lens probe set: prompts in a language L that end right before a built-in identifier
with a Python counterpart (PHP `strlen` / Python `len`), stored as data in probe_set.json.

Loading tokenizes every prompt with the run's tokenizer (sentencepiece or a Hugging Face
tokenizer.json) and checks that the two identifiers' first tokens hold the identifiers' first
characters and differ; problems are reported by prompt id and the prompt is left out.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from babel_jax.data.tokenizer import BOS
from babel_jax.errors import ConfigError

DEFAULT_PATH = os.path.join(os.path.dirname(__file__), 'probe_set.json')


@dataclasses.dataclass
class ProbeSet:
  """Tokenized prompts of the languages a run can probe, right-padded into one batch."""
  ids: list[str]  # '<lang>/<identifier>#<k>'
  languages: list[str]  # per prompt
  tokens_PxL: np.ndarray
  last_P: np.ndarray  # index of each prompt's last token
  target_first_P: np.ndarray  # first token id of the L identifier
  primary_first_P: np.ndarray  # first token id of the Python counterpart
  problems: list[str]

  def batch(self) -> dict[str, np.ndarray]:
    p, length = self.tokens_PxL.shape
    pos = np.broadcast_to(np.arange(length, dtype=np.int32), (p, length))
    seg = (pos <= self.last_P[:, None]).astype(np.int32)
    return {'tokens': self.tokens_PxL, 'positions': pos * seg, 'segment_ids': seg}


def load_raw(path: str = DEFAULT_PATH) -> dict:
  try:
    with open(path) as f:
      raw = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ConfigError(f'probe set {path!r}: cannot read it as JSON ({e})') from e
  if not isinstance(raw.get('languages'), dict):
    raise ConfigError(f'probe set {path!r}: expected {{"languages": {{lang: [pairs]}}}}')
  return raw


def _first_tokens(tokenizer, space: str, target: str, python: str
                  ) -> tuple[list[int], list[int], bool, str | None]:
  """The first token of each identifier after a prompt ending in `space`; whether the space
  stays with the prompt; and why the pair cannot be read (None when it can).

  The space goes with the identifier, as pre-tokenizers attach a space to the word after it
  ('$n = ' + 'strlen' is read as '$n =' + ' strlen'), unless the vocabulary spells that as a
  bare space token first (a byte-level BPE without a 'Ġstr' piece reads ' strlen' as 'Ġ' 'st'
  ...): then the space ends the prompt and the identifier starts after it. Both identifiers
  must split the prompt the same way, since they share it.
  """
  def split(identifier: str) -> tuple[list[int], bool]:
    ids = tokenizer.encode(space + identifier)[:1]
    if space and ids and not tokenizer.decode(ids).strip():  # a whitespace-only token
      return tokenizer.encode(identifier)[:1], True
    return ids, False
  (first_t, in_t), (first_p, in_p) = split(target), split(python)
  if not first_t or not first_p:
    return first_t, first_p, in_t, 'an identifier encodes to no token'
  if in_t != in_p:
    return first_t, first_p, in_t, (f'{target!r} and {python!r} split the prompt\'s trailing '
                                    'space differently in this vocabulary')
  for identifier, first in ((target, first_t), (python, first_p)):
    if not tokenizer.decode(first).strip():
      return first_t, first_p, in_t, f'{identifier!r} starts with a whitespace-only token'
  if first_t == first_p:
    return first_t, first_p, in_t, (f'{target!r} and {python!r} start with the same token '
                                    f'{first_t}')
  return first_t, first_p, in_t, None


def build_probe_set(tokenizer, languages: list[str], max_len: int, path: str = DEFAULT_PATH,
          max_prompts_per_pair: int = 0) -> ProbeSet:
  """Tokenizes the prompts of `languages` (those the probe set has); skips bad ones by id.

  A prompt's trailing spaces move onto the identifier, since the tokenizer attaches a space to
  the word after it ('$n = ' + 'strlen' is read as '$n =' + ' strlen'); see _first_tokens.
  """
  raw = load_raw(path)
  rows, ids, langs, tgt, py, problems = [], [], [], [], [], []
  for lang in languages:
    for pair in raw['languages'].get(lang, []):
      prompts = pair['prompts'][:max_prompts_per_pair or None]
      for k, prompt in enumerate(prompts):
        pid = f'{pair["id"]}#{k}'
        body = prompt.rstrip(' ')
        space = ' ' * (len(prompt) - len(body))
        first_t, first_p, space_in_prompt, problem = _first_tokens(
            tokenizer, space, pair['target'], pair['python'])
        toks = [getattr(tokenizer, 'bos_id', BOS),
                *tokenizer.encode(prompt if space_in_prompt else body)]
        if not body:
          problems.append(f'{pid}: empty prompt')
        elif len(toks) > max_len:
          problems.append(f'{pid}: {len(toks)} tokens, longer than the model\'s {max_len}')
        elif problem:
          problems.append(f'{pid}: {problem}')
        else:
          rows.append(toks)
          ids.append(pid)
          langs.append(lang)
          tgt.append(first_t[0])
          py.append(first_p[0])
  if not rows:
    raise ConfigError(f'probe set {path!r} has no usable prompts for languages {languages} '
                      f'(it covers {sorted(raw["languages"])}); problems: {problems[:5]}')
  length = max(map(len, rows))
  tokens = np.zeros((len(rows), length), np.int32)
  for i, r in enumerate(rows):
    tokens[i, :len(r)] = r
  return ProbeSet(ids, langs, tokens, np.array([len(r) - 1 for r in rows], np.int32),
                  np.array(tgt, np.int32), np.array(py, np.int32), problems)
