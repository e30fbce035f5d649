"""Statistics over seeds: per-language means with 95% intervals, and who wins a comparison.

Intervals are Student-t intervals of the mean over seeds; the difference between the mixtures is
Welch's interval (unequal variances). A mixture "wins" a language only when the interval of the
difference excludes zero in its favour; otherwise the verdict is "no clear difference".
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
  """Mean and its t interval; a single value has no interval (low = high = None)."""
  x = np.asarray([v for v in values if v is not None], np.float64)
  out = {'n': int(x.size), 'values': x.tolist(), 'mean': float(x.mean()) if x.size else None,
         'sd': None, 'low': None, 'high': None}
  if x.size >= 2:
    sd = float(x.std(ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * sd / math.sqrt(x.size)
    out.update(sd=sd, low=out['mean'] - half, high=out['mean'] + half)
  return out


def difference(a: Sequence[float], b: Sequence[float],
               confidence: float = CONFIDENCE) -> dict[str, Any]:
  """mean(b) - mean(a) with Welch's t interval (None where a side has fewer than 2 values)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  out = {'diff': float(b.mean() - a.mean()), 'low': None, 'high': None}
  if a.size < 2 or b.size < 2:
    return out
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = math.sqrt(va + vb)
  if se == 0:  # identical seeds on both sides: the difference is exact
    out.update(low=out['diff'], high=out['diff'])
    return out
  dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  half = stats.t.ppf(0.5 + confidence / 2, dof) * se
  out.update(low=out['diff'] - half, high=out['diff'] + half)
  return out


def verdict(diff: dict[str, Any], lower_is_better: bool) -> str:
  """'optimized', 'original', or 'no clear difference' (diff is optimized - original)."""
  if diff['low'] is None:
    return 'no interval (fewer than 2 seeds)'
  better_low = diff['high'] < 0 if lower_is_better else diff['low'] > 0
  better_high = diff['low'] > 0 if lower_is_better else diff['high'] < 0
  if better_low:
    return 'optimized'
  if better_high:
    return 'original'
  return 'no clear difference'


def compare(runs: dict[str, list[dict[str, dict[str, float]]]],
            languages: Sequence[str]) -> list[dict[str, Any]]:
  """Rows per (language, metric) from runs = {mixture: [per seed {metric: {lang: value}}]}."""
  rows = []
  for metric, lower in (('heldout_loss', True), ('pass@1', False)):
    for lang in languages:
      per = {m: [r[metric][lang] for r in runs[m] if lang in r.get(metric, {})]
             for m in ('original', 'optimized')}
      if not per['original'] or not per['optimized']:
        continue
      diff = difference(per['original'], per['optimized'])
      rows.append({'language': lang, 'metric': metric, 'lower_is_better': lower,
                   'original': interval(per['original']),
                   'optimized': interval(per['optimized']),
                   'difference': diff, 'winner': verdict(diff, lower)})
  return rows
