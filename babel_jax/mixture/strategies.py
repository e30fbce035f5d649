"""Mixture strategies behind one interface: each returns a MixtureSpec the grain pipeline accepts.

Baselines: natural proportions (tokens available), uniform, temperature sampling (natural shares
to the power 1/T). The Babel Tower optimizer is Algorithm 1 of PAPER.md, with these assumptions:
- Eq. 1: the Python system's share at loss l is P(l) = (alpha - l) / (alpha - beta), beta the loss
  where continual training on L starts (P = 1), alpha the stabilised loss (P = 0). We fit beta as
  the first point of the loss curve and alpha as the mean of its last `tail` points.
- P* = P(l*), l* the loss at the checkpoint of best new-language performance.
- Eq. 2: system share follows token share, so L gets eta_L = eta_python * (1 - P*) / P* tokens,
  capped by the tokens the corpus has. (The paper's Eq. 3 is unclear; we do not use it.)
Every fitted number is kept in the spec's provenance. Curves that cannot support the fit raise
MixtureFitError naming the language and the reason; nothing falls back silently.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.config import ConfigError
from babel_jax.data.mixture_spec import MixtureSpec


class MixtureFitError(ConfigError):
  """A loss / performance curve cannot support the Babel Tower fit."""


def _spec(amounts: dict[str, float], provenance: dict[str, Any]) -> MixtureSpec:
  total = sum(amounts.values())
  if total <= 0:
    raise ConfigError(f'mixture: all amounts are zero: {amounts}')
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


def fit_system_share(loss: Sequence[float], performance: Sequence[float], language: str,
                     tail: int = 3) -> dict[str, float]:
  """Eq. 1 fitted on one continual pre-training run: alpha, beta, l*, P*."""
  loss, performance = np.asarray(loss, float), np.asarray(performance, float)
  if len(loss) != len(performance):
    raise MixtureFitError(f'{language}: {len(loss)} loss points but {len(performance)} '
                          'performance points')
  if len(loss) < tail + 2:
    raise MixtureFitError(f'{language}: {len(loss)} checkpoints; the fit needs at least '
                          f'{tail + 2}')
  if not (np.isfinite(loss).all() and np.isfinite(performance).all()):
    raise MixtureFitError(f'{language}: the curves contain NaN or inf')
  beta, alpha = float(loss[0]), float(loss[-tail:].mean())
  if alpha >= beta:
    raise MixtureFitError(f'{language}: the loss did not fall (start {beta:.4f}, stabilised '
                          f'{alpha:.4f}); Eq. 1 needs alpha < beta')
  best = int(np.argmax(performance))
  if best == 0 or np.isclose(performance.max(), performance.min()):
    raise MixtureFitError(f'{language}: no clear performance peak after the start '
                          f'(best at checkpoint {best}, range {np.ptp(performance):.4g})')
  l_star = float(loss[best])
  p_star = (alpha - l_star) / (alpha - beta)
  if not 0.0 < p_star < 1.0:
    raise MixtureFitError(f'{language}: P* = {p_star:.3f} is outside (0, 1) (loss at the best '
                          f'checkpoint {l_star:.4f}, beta {beta:.4f}, alpha {alpha:.4f})')
  return {'alpha': alpha, 'beta': beta, 'l_star': l_star, 'best_index': best, 'p_star': p_star}


def babel_tower(python_tokens: float, p_star: dict[str, float],
                available: dict[str, float] | None = None, primary: str = 'python',
                fits: dict[str, Any] | None = None) -> MixtureSpec:
  """Algorithm 1 / Eq. 2: tokens of each new language L from the primary-language budget."""
  if python_tokens <= 0:
    raise ConfigError(f'babel_tower: the {primary} token budget must be > 0, got {python_tokens}')
  tokens = {primary: float(python_tokens)}
  capped = {}
  for lang, p in p_star.items():
    if not 0.0 < p < 1.0:
      raise MixtureFitError(f'{lang}: P* = {p} is outside (0, 1)')
    want = python_tokens * (1.0 - p) / p
    have = (available or {}).get(lang, np.inf)
    tokens[lang] = float(min(want, have))
    if want > have:
      capped[lang] = {'wanted': want, 'available': have}
  return _spec(tokens, {'strategy': 'babel_tower', 'primary': primary,
                        'python_tokens': python_tokens, 'p_star': dict(p_star),
                        'target_tokens': tokens, 'capped': capped, 'fits': fits or {}})
