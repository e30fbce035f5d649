"""Which mixture strategy wins, and whether a small study's ranking holds at a larger scale.

`winner`: every pair of strategies by Welch's test over seeds, Holm-corrected over the pairs; a
strategy wins only when it beats every other after the correction, else "no clear winner".
`agreement`: the pairwise decision accuracy (DataDecide, Magnusson et al. 2025: the share of
strategy pairs that the small scale orders as the target scale does) and Spearman's rho between
the two rankings of strategy means, each with a bootstrap interval over seeds.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
from scipy import stats as scipy_stats

from babel_jax.dynamics import stats

ALPHA = 1 - stats.CONFIDENCE


def winner(runs: dict[str, Sequence[float]], lower_is_better: bool = True) -> dict[str, Any]:
  """{'winner': name or None, 'verdict': text, 'pairs': [...]} from per-seed values."""
  names = list(runs)
  pairs = []
  for a, b in itertools.combinations(names, 2):
    d = stats.difference(runs[a], runs[b])  # mean(b) - mean(a)
    pairs.append({'a': a, 'b': b, **{k: d[k] for k in ('diff', 'low', 'high', 'p', 'reason')}})
  tested = [p for p in pairs if p['p'] is not None]
  for p, adj in zip(tested, stats.holm([p['p'] for p in tested])):
    p['p_holm'] = adj
  beats = {n: set() for n in names}
  for p in tested:
    if p['p_holm'] < ALPHA:
      b_better = (p['diff'] < 0) == lower_is_better
      beats[p['b'] if b_better else p['a']].add(p['a'] if b_better else p['b'])
  best = [n for n in names if len(beats[n]) == len(names) - 1]
  if len(names) > 1 and best:
    return {'winner': best[0], 'verdict': f'{best[0]} (beats every other strategy, Holm over '
                                          f'{_pairs(len(tested))})', 'pairs': pairs}
  untested = len(pairs) - len(tested)
  why = f'; {untested} pair{"s" * (untested != 1)} without a test' if untested else ''
  return {'winner': None, 'verdict': f'no clear winner (Holm over {_pairs(len(tested))}{why})',
          'pairs': pairs}


def _pairs(n: int) -> str:
  return f'{n} pair' + ('s' if n != 1 else '')


def decision_accuracy(small: dict[str, float], target: dict[str, float]) -> float | None:
  """Share of strategy pairs ordered alike at both scales; target ties are left out, small-scale
  ties count one half. None when no pair differs at the target scale."""
  agree, counted = 0.0, 0
  for a, b in itertools.combinations(sorted(small), 2):
    t = np.sign(target[a] - target[b])
    if t == 0:
      continue
    s = np.sign(small[a] - small[b])
    agree += 0.5 if s == 0 else float(s == t)
    counted += 1
  return agree / counted if counted else None


def spearman(small: dict[str, float], target: dict[str, float]) -> float | None:
  names = sorted(small)
  if len(names) < 3 or len({small[n] for n in names}) == 1 or len({target[n] for n in names}) == 1:
    return None  # undefined: too few strategies, or one side ranks them all equal
  rho = scipy_stats.spearmanr([small[n] for n in names], [target[n] for n in names]).statistic
  return None if np.isnan(rho) else float(rho)


def agreement(small: dict[str, Sequence[float]], target: dict[str, Sequence[float]],
              seed: int = 0, boots: int = 2000) -> dict[str, Any]:
  """Decision accuracy and Spearman's rho of the seed means, with 95% bootstrap intervals
  (seeds resampled within each strategy and scale)."""
  names = sorted(set(small) & set(target))
  mean = lambda runs: {n: float(np.mean(runs[n])) for n in names}  # noqa: E731
  rng = np.random.default_rng(seed)
  draws = {'accuracy': [], 'rho': []}
  for _ in range(boots):
    pick = lambda runs: {n: float(np.mean(rng.choice(np.asarray(runs[n]), len(runs[n]))))  # noqa
                         for n in names}
    s, t = pick(small), pick(target)
    for key, fn in (('accuracy', decision_accuracy), ('rho', spearman)):
      value = fn(s, t)
      if value is not None:
        draws[key].append(value)
  out = {'strategies': names}
  for key, fn in (('accuracy', decision_accuracy), ('rho', spearman)):
    values = draws[key]
    out[key] = {'value': fn(mean(small), mean(target)),
                'low': float(np.quantile(values, 0.025)) if values else None,
                'high': float(np.quantile(values, 0.975)) if values else None}
  return out
