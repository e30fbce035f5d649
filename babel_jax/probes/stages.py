"""Stage detection (Translation / Transition / Stabilization) and the loss-based system share.

PAPER.md makes the paper's by-eye reading a function: smooth the per-checkpoint performance
curve; Translation ends at the smoothed maximum; Stabilization starts where the smoothed slope
stays within a tolerance for good; Transition lies between. Slopes are measured relative to the
curve's overall rate (range / step span), so the tolerance has no units.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def smooth(y: np.ndarray, window: int) -> np.ndarray:
  """Centred moving average; the window shrinks at the ends instead of padding."""
  y = np.asarray(y, np.float64)
  if window <= 1 or len(y) < 2:
    return y.copy()
  half = window // 2
  return np.array([y[max(0, i - half):i + half + 1].mean() for i in range(len(y))])


def detect(steps, perf, window: int, slope_tolerance: float) -> dict[str, Any]:
  """Stage boundaries of a performance curve (higher is better) sampled at `steps`."""
  steps, perf = np.asarray(steps, np.float64), np.asarray(perf, np.float64)
  if len(steps) < 3:
    return {'translation_end': None, 'stabilization_start': None, 'stages': [],
            'smoothed': perf.tolist(), 'reason': f'{len(steps)} checkpoints; need at least 3'}
  s = smooth(perf, window)
  peak = int(np.argmax(s))
  # Forward differences: a point is stable when the curve ahead of it is flat.
  slope = np.diff(s) / np.diff(steps)
  slope = np.append(slope, slope[-1])
  scale = (s.max() - s.min()) / (steps[-1] - steps[0])
  stable = np.abs(slope) <= slope_tolerance * scale if scale > 0 else np.ones_like(s, bool)
  start = None
  for i in range(peak + 1, len(s)):
    if stable[i:].all():
      start = i
      break
  first, last = int(steps[0]), int(steps[-1])
  stages = [{'name': 'translation', 'start': first, 'end': int(steps[peak])}]
  if start is not None:
    stages += [{'name': 'transition', 'start': int(steps[peak]), 'end': int(steps[start])},
               {'name': 'stabilization', 'start': int(steps[start]), 'end': last}]
  elif peak < len(s) - 1:
    stages.append({'name': 'transition', 'start': int(steps[peak]), 'end': last})
  return {'translation_end': int(steps[peak]),
          'stabilization_start': None if start is None else int(steps[start]),
          'stages': stages, 'smoothed': s.tolist()}


def crossover(steps, python_share, target_share, window: int) -> int | None:
  """First step from which the smoothed target share stays at or above the Python share."""
  d = smooth(np.asarray(target_share) - np.asarray(python_share), window)
  for i in range(len(d)):
    if (d[i:] >= 0).all():
      return int(steps[i])
  return None


def peak_step(steps, counts, window: int) -> int | None:
  """Step of the smoothed maximum (where transferring neurons start to drop)."""
  if not len(counts):
    return None
  return int(np.asarray(steps)[int(np.argmax(smooth(counts, window)))])


def agrees(step: int | None, boundaries: dict[str, Any], slack_steps: float = 0) -> bool | None:
  """Whether a probe curve's event falls in the Transition window (or at its edges)."""
  if step is None or boundaries.get('translation_end') is None:
    return None
  end = boundaries['stabilization_start']
  end = np.inf if end is None else end
  return bool(boundaries['translation_end'] - slack_steps <= step <= end + slack_steps)


def system_share(loss, stabilization_start: int | None, steps, window: int) -> dict[str, Any]:
  """Eq. 1: P(l) = (alpha - l) / (alpha - beta); beta = the first checkpoint's loss (P = 1),
  alpha = the stabilised loss (mean smoothed loss from Stabilization on, else the last)."""
  loss, steps = np.asarray(loss, np.float64), np.asarray(steps)
  s = smooth(loss, window)
  beta = float(loss[0])
  alpha = float(s[steps >= stabilization_start].mean()) if stabilization_start is not None \
      else float(s[-1])
  if np.isclose(alpha, beta):
    return {'alpha': alpha, 'beta': beta, 'share': [float('nan')] * len(loss)}
  return {'alpha': alpha, 'beta': beta, 'share': ((alpha - loss) / (alpha - beta)).tolist()}


def correlation(a, b) -> float | None:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
    return None
  return float(np.corrcoef(a[ok], b[ok])[0, 1])


def knowledge_transfer(python_specific: set[str], solved: set[str]) -> float | None:
  """|P ∩ C| / |C|: the share of correct L answers that need Python-only knowledge."""
  if not solved:
    return None
  return len(python_specific & solved) / len(solved)
