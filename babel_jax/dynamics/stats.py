"""Statistics over seeds: means with 95% intervals, Welch differences and Holm's correction.

Intervals are Student-t intervals of the mean over seeds; the difference between two sets of
runs is Welch's interval (unequal variances), with Welch's two-sided p-value. Two sides whose
seeds all read the same have no spread: their difference has no interval and no test (it can
separate nothing). `holm` adjusts the p-values of several tests read together (Holm-Bonferroni);
dynamics/ranking.py picks a winner among several mixtures with them.
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


def number_text(x: float | None, digits: int = 4) -> str:
  """A reading in the reports' tables; '–' when there is none."""
  return '–' if x is None else f'{x:.{digits}f}'


def interval_text(iv: dict[str, Any], digits: int = 4) -> str:
  """An `interval` as the reports write it: 'mean [low, high]', or 'mean (n=1)' without one."""
  if iv['low'] is None:
    return f'{number_text(iv["mean"], digits)} (n={iv["n"]})'
  return (f'{number_text(iv["mean"], digits)} [{number_text(iv["low"], digits)}, '
          f'{number_text(iv["high"], digits)}]')


def difference(a: Sequence[float], b: Sequence[float],
               confidence: float = CONFIDENCE) -> dict[str, Any]:
  """mean(b) - mean(a) with Welch's t interval and two-sided p-value; low, high and p are None
  (and `reason` says why) where a side has fewer than 2 values or neither side has spread."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  out = {'diff': float(b.mean() - a.mean()) if a.size and b.size else None, 'low': None,
         'high': None, 'p': None, 'reason': None}
  if a.size < 2 or b.size < 2:
    return {**out, 'reason': f'fewer than 2 seeds ({a.size}, {b.size})'}
  if np.ptp(a) == 0 and np.ptp(b) == 0:  # every seed reads the same: nothing measures the noise
    return {**out, 'reason': 'no spread (every seed reads the same on both sides)'}
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = math.sqrt(va + vb)
  dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  half = stats.t.ppf(0.5 + confidence / 2, dof) * se
  p = 2 * stats.t.sf(abs(out['diff']) / se, dof)
  out.update(low=out['diff'] - half, high=out['diff'] + half, p=float(p), dof=float(dof))
  return out


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm-Bonferroni adjusted p-values, in the input's order: the i-th smallest of m is
  multiplied by m - i (i from 0), made monotone and capped at 1. Rejecting where the adjusted
  p is below 1 - CONFIDENCE keeps the chance of any false separation among the m tests there."""
  p = np.asarray(p_values, np.float64)
  order = np.argsort(p, kind='stable')
  scaled = np.minimum(1.0, p[order] * (len(p) - np.arange(len(p))))
  adjusted = np.empty_like(p)
  adjusted[order] = np.maximum.accumulate(scaled) if len(p) else scaled
  return adjusted.tolist()
