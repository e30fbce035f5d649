"""Eq. 1, the only one: the Python system's share of a continual run as a function of its loss.

  P(l) = (alpha - l) / (alpha - beta)

beta is the held-out loss of the new language where continual training starts (P = 1), alpha the
stabilised loss (P = 0); both rules are configurable (`dynamics.eq1_beta`, `dynamics.eq1_alpha`,
docs/method.md). P* = P(l*) at the checkpoint of best performance, read at the end of
Translation (the smoothed performance maximum), so one noisy point does not decide it. A maximum
at the last checkpoint or inside the region alpha is read from is no peak (the curve has not
come down from it), so it gives no P*. The per-run report, the study report and Algorithm 1 all
call `fit`, so they print the same numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax.dynamics import stages as stages_lib


# Eq. 1's settings are the config's dynamics section: it reads eq1_beta, eq1_alpha, fit_tail
# (losses averaged by the 'tail' rule) and smooth_window (for 'smoothed' and 'stabilization').
Eq1Settings = config_lib.Dynamics


@dataclasses.dataclass(frozen=True)
class Eq1Fit:
  """Eq. 1 on one run's held-out loss curve, and P* where the curves support it."""
  alpha: float
  beta: float
  rule: str  # how alpha and beta were read, in words
  share: np.ndarray  # [C] P(l) at every checkpoint (NaN when alpha == beta)
  best_index: int | None = None  # checkpoint of best performance (end of Translation)
  best_step: int | None = None
  l_star: float | None = None
  p_star: float | None = None  # None when `problem` says why not
  problem: str | None = None

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d['share'] = self.share.tolist()
    return d


def alpha_region(steps, stages: stages_lib.Stages, s: Eq1Settings) -> int:
  """Index of the first checkpoint alpha is read from (alpha averages from there to the end)."""
  start = stages.stabilization_start
  if s.eq1_alpha == 'stabilization' and start is not None:
    return int(np.argmax(np.asarray(steps) >= start))
  return max(0, len(steps) - s.fit_tail)


def _alpha_beta(steps, loss, stages: stages_lib.Stages, s: Eq1Settings) -> tuple[float, float, str]:
  smoothed = stages_lib.smooth(loss, s.smooth_window)
  if s.eq1_beta == 'smoothed':
    beta, beta_rule = float(smoothed[0]), 'beta = first point of the smoothed loss'
  else:
    beta, beta_rule = float(loss[0]), 'beta = loss at the first checkpoint'
  start = stages.stabilization_start
  first = alpha_region(steps, stages, s)
  if s.eq1_alpha == 'stabilization' and start is not None:
    alpha = float(smoothed[first:].mean())
    alpha_rule = f'alpha = mean smoothed loss from Stabilization (step {start})'
  else:
    alpha = float(np.mean(loss[first:]))
    alpha_rule = f'alpha = mean of the last {len(loss) - first} losses'
    if s.eq1_alpha == 'stabilization':
      alpha_rule += ' (no Stabilization found)'
  return alpha, beta, f'{beta_rule}; {alpha_rule}'


def fit(steps, loss, stages: stages_lib.Stages, settings: Eq1Settings) -> Eq1Fit:
  """Eq. 1 on a run's held-out loss; P* at `stages`' end of Translation."""
  steps, loss = np.asarray(steps), np.asarray(loss, np.float64)
  if not len(loss):
    return Eq1Fit(float('nan'), float('nan'), 'no checkpoints', loss, problem='no checkpoints')
  alpha, beta, rule = _alpha_beta(steps, loss, stages, settings)
  share = (alpha - loss) / (alpha - beta) if alpha != beta else np.full(len(loss), np.nan)
  out = Eq1Fit(alpha, beta, rule, share)
  problem = _problem(steps, loss, stages, alpha, beta, settings)
  if problem:
    return dataclasses.replace(out, problem=problem)
  best = stages.peak_index
  p_star = float(share[best])
  out = dataclasses.replace(out, best_index=best, best_step=int(steps[best]),
                            l_star=float(loss[best]))
  if not 0.0 < p_star < 1.0:
    return dataclasses.replace(out, problem=(
        f'P* = {p_star:.3f} is outside (0, 1) (loss at the best checkpoint {loss[best]:.4f}, '
        f'beta {beta:.4f}, alpha {alpha:.4f})'))
  return dataclasses.replace(out, p_star=p_star)


def _problem(steps, loss, stages, alpha: float, beta: float, s: Eq1Settings) -> str | None:
  """Why these curves cannot give a P*, or None."""
  if len(loss) < s.fit_tail + 2:
    return f'{len(loss)} checkpoints; the fit needs at least {s.fit_tail + 2}'
  if not (np.isfinite(loss).all() and np.isfinite(stages.smoothed).all()):
    return 'the curves contain NaN or inf'
  if alpha >= beta:
    return (f'the loss did not fall (start {beta:.4f}, stabilised {alpha:.4f}); Eq. 1 needs '
            'alpha < beta')
  if stages.peak_index in (None, 0) or np.isclose(stages.smoothed.max(), stages.smoothed.min()):
    return (f'no clear performance peak after the start (best at checkpoint '
            f'{stages.peak_index}, range {np.ptp(stages.smoothed):.4g})')
  return _not_a_peak(steps, stages, s)


def _not_a_peak(steps, stages: stages_lib.Stages, s: Eq1Settings) -> str | None:
  """Why the performance maximum is no Translation peak (the curve never came down from it
  before alpha is read), or None."""
  best, last = stages.peak_index, len(steps) - 1
  if best == last:
    return (f'no performance peak: the maximum is at the last checkpoint (step {steps[best]}), '
            'so the curve may still be rising')
  first = alpha_region(steps, stages, s)
  if best >= first:
    return (f'no performance peak before alpha\'s region: the maximum (step {steps[best]}) lies '
            f'among the checkpoints alpha is read from (steps {steps[first]} to {steps[last]})')
  return None
