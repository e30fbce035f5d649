"""Mixture strategies behind one interface: each returns a MixtureSpec the grain pipeline accepts.

Baselines: natural proportions (tokens available), uniform, temperature sampling (natural shares
to the power 1/T). The Babel Tower allocation is Eq. 2 of Algorithm 1 (docs/method.md): system
share follows token share, so a new language L with P* gets eta_L = eta_python * (1 - P*) / P*
tokens, capped by the tokens the corpus has. (The paper's Eq. 3 is unclear; we do not use it.)
P* itself comes from babel_jax.dynamics.eq1, over seeds by mixture/optimize.py (the mean over
the seeds that give one, when they are a majority).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.data.mixture_spec import MixtureSpec
from babel_jax.errors import ConfigError, FitError, MixtureError


def _spec(amounts: dict[str, float], provenance: dict[str, Any]) -> MixtureSpec:
  total = sum(amounts.values())
  if total <= 0:
    raise MixtureError(f'mixture: all amounts are zero: {amounts}')
  return MixtureSpec({k: v / total for k, v in amounts.items()}, provenance)


def natural(tokens: dict[str, float]) -> MixtureSpec:
  """Proportional to the tokens each language has."""
  return _spec(dict(tokens), {'strategy': 'natural', 'tokens': dict(tokens)})


def uniform(languages: Sequence[str]) -> MixtureSpec:
  return _spec({lang: 1.0 for lang in languages}, {'strategy': 'uniform'})


def temperature(tokens: dict[str, float], t: float) -> MixtureSpec:
  """Natural shares to the power 1/t (t = 1 natural, t -> infinity uniform)."""
  if t <= 0:
    raise ConfigError(f'mixture temperature must be > 0, got {t}')
  total = sum(tokens.values())
  return _spec({k: (v / total) ** (1.0 / t) for k, v in tokens.items()},
               {'strategy': 'temperature', 'temperature': t, 'tokens': dict(tokens)})


def babel_tower(primary_tokens: float, p_star: dict[str, float],
                available: dict[str, float] | None = None, primary: str = 'python',
                fits: dict[str, Any] | None = None) -> MixtureSpec:
  """Algorithm 1 / Eq. 2: tokens of each new language L from the primary-language budget."""
  if primary_tokens <= 0:
    raise ConfigError(f'babel_tower: the {primary} token budget must be > 0, got {primary_tokens}')
  tokens = {primary: float(primary_tokens)}
  capped = {}
  for lang, p in p_star.items():
    if not 0.0 < p < 1.0:
      raise FitError(f'{lang}: P* = {p} is outside (0, 1)')
    want = primary_tokens * (1.0 - p) / p
    have = (available or {}).get(lang, np.inf)
    tokens[lang] = float(min(want, have))
    if want > have:
      capped[lang] = {'wanted': want, 'available': have}
  return _spec(tokens, {'strategy': 'babel_tower', 'primary': primary,
                        'primary_tokens': primary_tokens, 'p_star': dict(p_star),
                        'target_tokens': tokens, 'capped': capped, 'fits': fits or {}})


def unimax(tokens: dict[str, float], budget: float, max_epochs: float) -> MixtureSpec:
  """UniMax (Chung et al. 2023, Algorithm 1): a token budget spread uniformly over languages,
  none seeing more than `max_epochs` passes over its data; what a capped language cannot take
  is shared among the rest (languages visited from the smallest up)."""
  if budget <= 0 or max_epochs <= 0:
    raise ConfigError(f'unimax: budget ({budget}) and max_epochs ({max_epochs}) must be > 0')
  most = sum(max_epochs * t for t in tokens.values())
  if budget > most * (1 + 1e-9):
    raise MixtureError(f'unimax: a budget of {budget:.4g} tokens is more than {max_epochs} '
                       f'epochs of every language ({most:.4g}); raise the epochs or lower it')
  left, out, capped = float(budget), {}, []
  order = sorted(tokens, key=lambda k: (tokens[k], k))
  for i, lang in enumerate(order):
    share = left / (len(order) - i)
    out[lang] = min(share, max_epochs * tokens[lang])
    if out[lang] < share:
      capped.append(lang)
    left -= out[lang]
  return _spec({k: out[k] for k in tokens},
               {'strategy': 'unimax', 'budget': budget, 'max_epochs': max_epochs,
                'target_tokens': {k: out[k] for k in tokens}, 'capped': capped,
                'tokens': dict(tokens)})
