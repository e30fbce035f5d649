"""MixtureSpec: how much of each language a run trains on, with where the numbers came from.

JSON form (a file named by `data.mixture`, or built from `data.weights` / `data.target_tokens`):
  {"weights": {"python": 0.5, "java": 0.5}, "provenance": {"strategy": "uniform", ...}}
  {"target_tokens": {"python": 2e6, "java": 1e6}}          (weights follow from the targets)
The grain pipeline realises the weights as token shares; the mixture strategies write these files.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from babel_jax.errors import MixtureError


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  weights: dict[str, float]  # normalised to sum 1, in the run's language order
  provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

  def to_json(self) -> str:
    return json.dumps({'weights': self.weights, 'provenance': self.provenance}, indent=2)

  def vector(self, languages: tuple[str, ...]) -> list[float]:
    return [self.weights[lang] for lang in languages]


def _normalise(raw: dict[str, float], languages: tuple[str, ...], what: str) -> dict[str, float]:
  unknown = [k for k in raw if k not in languages]
  if unknown:
    raise MixtureError(f'{what} names {unknown}, not among data.languages {list(languages)}')
  missing = [lang for lang in languages if lang not in raw]
  if missing:
    raise MixtureError(f'{what} gives no weight for {missing} (data.languages is '
                       f'{list(languages)}); give 0 to leave a language out')
  bad = {k: v for k, v in raw.items()
         if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
  if bad:
    raise MixtureError(f'{what} has negative or non-numeric weights: {bad}')
  total = float(sum(raw.values()))
  if total <= 0:
    raise MixtureError(f'{what} weights are all zero: {raw}')
  return {lang: raw[lang] / total for lang in languages}


def from_dict(d: dict[str, Any], languages: tuple[str, ...], what: str) -> MixtureSpec:
  if not isinstance(d, dict) or ('weights' in d) == ('target_tokens' in d):
    raise MixtureError(f'{what} must hold exactly one of "weights" or "target_tokens"')
  key = 'weights' if 'weights' in d else 'target_tokens'
  provenance = dict(d.get('provenance', {}))
  if key == 'target_tokens':
    provenance.setdefault('target_tokens', d[key])
  return MixtureSpec(_normalise(d[key], languages, f'{what} {key}'), provenance)


def restricted(spec: MixtureSpec, languages) -> MixtureSpec:
  """The spec over `languages` only, renormalised (a study's controls have no share)."""
  return MixtureSpec(_normalise({k: spec.weights[k] for k in languages}, tuple(languages),
                                'mixture'), dict(spec.provenance))


def extended(spec: MixtureSpec, languages) -> MixtureSpec:
  """The spec with weight 0 for every language of `languages` it does not name, in that order."""
  return MixtureSpec({k: spec.weights.get(k, 0.0) for k in languages}, spec.provenance)


def from_config(cfg) -> MixtureSpec:
  """The run's spec: data.mixture (file) > data.target_tokens > data.weights > uniform."""
  languages = cfg.data.languages
  if cfg.data.mixture:
    try:
      with open(cfg.data.mixture) as f:
        d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise MixtureError(f'data.mixture={cfg.data.mixture!r}: cannot read a JSON spec ({e})')
    return from_dict(d, languages, f'mixture spec {cfg.data.mixture!r}')
  for field in ('target_tokens', 'weights'):
    values = getattr(cfg.data, field)  # count and range checked by validate
    if values:
      return from_dict({field: dict(zip(languages, values)),
                        'provenance': {'strategy': f'config data.{field}'}},
                       languages, f'data.{field}')
  return MixtureSpec({lang: 1.0 / len(languages) for lang in languages},
                     {'strategy': 'uniform (default)'})
