"""Stage detection (Translation / Transition / Stabilization) on a performance curve.

The paper reads stages by eye; here it is a function (docs/method.md, "Stage rule"): smooth the
per-checkpoint performance curve with a centred moving average; Translation ends at the smoothed
maximum; Stabilization starts at the first later checkpoint from which the smoothed forward slope
stays within a tolerance; Transition lies between. Slopes are measured relative to the curve's
overall rate (range / step span), so the tolerance has no units.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

STAGE_NAMES = ('translation', 'transition', 'stabilization')


@dataclasses.dataclass(frozen=True)
class Band:
  name: str  # one of STAGE_NAMES
  start: int  # first step
  end: int  # last step


@dataclasses.dataclass(frozen=True)
class Stages:
  """Where the stages of one performance curve begin and end (steps), and why if they do not."""
  smoothed: np.ndarray  # [C] the smoothed performance curve
  peak_index: int | None  # index of the smoothed maximum (the end of Translation)
  translation_end: int | None
  stabilization_start: int | None
  bands: tuple[Band, ...]
  reason: str | None = None  # why no stages were found

  def to_dict(self) -> dict[str, Any]:
    return {'translation_end': self.translation_end,
            'stabilization_start': self.stabilization_start,
            'stages': [dataclasses.asdict(b) for b in self.bands],
            'smoothed': self.smoothed.tolist(), 'reason': self.reason}


def smooth(y, window: int) -> np.ndarray:
  """Centred moving average; the window shrinks at the ends instead of padding."""
  y = np.asarray(y, np.float64)
  if window <= 1 or len(y) < 2:
    return y.copy()
  half = window // 2
  return np.array([y[max(0, i - half):i + half + 1].mean() for i in range(len(y))])


def detect(steps, perf, window: int, slope_tolerance: float) -> Stages:
  """Stage boundaries of a performance curve (higher is better) sampled at `steps`."""
  steps, perf = np.asarray(steps, np.float64), np.asarray(perf, np.float64)
  s = smooth(perf, window)
  if len(steps) < 3:
    return Stages(s, None, None, None, (), f'{len(steps)} checkpoints; need at least 3')
  peak = int(np.argmax(s))
  # Forward differences: a point is stable when the curve ahead of it is flat.
  slope = np.diff(s) / np.diff(steps)
  slope = np.append(slope, slope[-1])
  scale = (s.max() - s.min()) / (steps[-1] - steps[0])
  stable = np.abs(slope) <= slope_tolerance * scale if scale > 0 else np.ones_like(s, bool)
  start = next((i for i in range(peak + 1, len(s)) if stable[i:].all()), None)
  first, last, at = int(steps[0]), int(steps[-1]), lambda i: int(steps[i])
  bands = [Band('translation', first, at(peak))]
  if start is not None:
    bands += [Band('transition', at(peak), at(start)), Band('stabilization', at(start), last)]
  elif peak < len(s) - 1:
    bands.append(Band('transition', at(peak), last))
  return Stages(s, peak, at(peak), None if start is None else at(start), tuple(bands))


def crossover(steps, primary_share, window: int) -> int | None:
  """First step from which the smoothed Python share stays at or below one half: from there on
  the model works in the new language."""
  d = smooth(0.5 - np.asarray(primary_share, np.float64), window)
  return next((int(steps[i]) for i in range(len(d)) if (d[i:] >= 0).all()), None)


def peak_step(steps, counts, window: int) -> int | None:
  """Step of the smoothed maximum (where transferring neurons start to drop)."""
  if not len(counts):
    return None
  return int(np.asarray(steps)[int(np.argmax(smooth(counts, window)))])


def interior_peak(values) -> int | None:
  """Index of the maximum of a per-checkpoint curve when it lies before the last checkpoint;
  None when the maximum is at the last one (an end-of-run maximum is not a peak: the curve may
  still be rising) or the curve has fewer than 2 points. Ties go to the earliest checkpoint."""
  v = np.asarray(values, np.float64)
  if len(v) < 2 or not np.isfinite(v).all():
    return None
  i = int(np.argmax(v))
  return None if i == len(v) - 1 else i


def agrees(step: int | None, stages: Stages, slack_steps: float = 0) -> bool | None:
  """Whether a probe curve's event falls in the Transition window (or at its edges)."""
  if step is None or stages.translation_end is None:
    return None
  end = np.inf if stages.stabilization_start is None else stages.stabilization_start
  return bool(stages.translation_end - slack_steps <= step <= end + slack_steps)


def correlation(a, b) -> float | None:
  """Pearson correlation over the points where both are finite; None when undefined."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
    return None
  return float(np.corrcoef(a[ok], b[ok])[0, 1])
