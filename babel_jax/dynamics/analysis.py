"""From a run's Curves to its conclusions: stages, Eq. 1, and whether the probes agree.

`analyze` is the one function the per-run report, the study report and Algorithm 1 share; its
settings come from the config's `dynamics` section (docs/method.md explains each choice).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from babel_jax.dynamics import eq1 as eq1_lib
from babel_jax.dynamics import stages as stages_lib
from babel_jax.dynamics import transfer
from babel_jax.dynamics.curves import Curves


@dataclasses.dataclass(frozen=True)
class Settings:
  """How curves are interpreted (config section `dynamics`)."""
  language: str = ''  # the new language L of a run; '' = the heaviest non-primary one
  performance: str = 'auto'
  smooth_window: int = 3
  slope_tolerance: float = 0.1
  eq1: eq1_lib.Eq1Settings = eq1_lib.Eq1Settings()
  python_specific: str = ''  # JSON list of task ids P, for |P∩C|/|C|

  @classmethod
  def from_config(cls, cfg) -> 'Settings':
    d = cfg.dynamics
    return cls(d.language, d.performance, d.smooth_window, d.slope_tolerance,
               eq1_lib.Eq1Settings(d.eq1_beta, d.eq1_alpha, d.fit_tail, d.smooth_window),
               d.python_specific)


@dataclasses.dataclass(frozen=True)
class Analysis:
  """What one run's curves say."""
  stages: stages_lib.Stages
  eq1: eq1_lib.Eq1Fit
  crossover_step: int | None  # the working language turns to L (logit lens)
  crossover_agrees: bool | None  # ... inside Transition
  transferring_peak_step: int | None  # transferring neurons start to drop
  transferring_agrees: bool | None
  eq1_vs_lens: float | None  # correlation of Eq. 1's share with the lens's Python share
  knowledge_transfer: list[float | None] | None  # |P∩C|/|C| per checkpoint

  def to_dict(self) -> dict[str, Any]:
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    d['stages'], d['eq1'] = self.stages.to_dict(), self.eq1.to_dict()
    return d


def analyze(curves: Curves, s: Settings) -> Analysis:
  """Stages of the performance curve, Eq. 1 on the loss, and the probes' events against them."""
  steps, w = curves.steps, s.smooth_window
  stages = stages_lib.detect(steps, curves.performance.values, w, s.slope_tolerance)
  fit = eq1_lib.fit(steps, curves.loss, stages, s.eq1)
  crossover = corr = None
  if curves.lens is not None:
    crossover = stages_lib.crossover(steps, curves.lens.python_share_C, w)
    corr = stages_lib.correlation(fit.share, curves.lens.python_share_C)
  peak = stages_lib.peak_step(steps, curves.transferring_neurons, w)
  kt = None
  if s.python_specific and curves.solved is not None:
    with open(s.python_specific) as f:
      specific = set(json.load(f))
    kt = [transfer.knowledge_transfer(specific, set(x)) for x in curves.solved]
  return Analysis(stages, fit, crossover, stages_lib.agrees(crossover, stages), peak,
                  stages_lib.agrees(peak, stages), corr, kt)


def summary(curves: Curves, analysis: Analysis) -> dict[str, Any]:
  """Curves and analysis as one JSON-able dict (the per-run report's summary.json)."""
  out: dict[str, Any] = {
      'run': curves.run, 'steps': curves.steps.tolist(), 'tokens': curves.tokens.tolist(),
      'primary': curves.primary, 'target': curves.language,
      'heldout_loss': {k: v.tolist() for k, v in curves.heldout_loss.items()},
      'performance': {'source': curves.performance.source, 'curve': curves.performance.name,
                      'values': curves.performance.values.tolist(),
                      'why': curves.performance.why},
      'transferring_neurons': curves.transferring_neurons.tolist(), **analysis.to_dict()}
  if curves.lens is not None:
    out['lens'] = {'python_top1': curves.lens.python_top1_CxN.mean(1).tolist(),
                   'target_top1': curves.lens.target_top1_CxN.mean(1).tolist(),
                   'python_mass_share': curves.lens.python_share_C.tolist()}
  return json.loads(json.dumps(out, default=_plain))


def _plain(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(type(x))
