"""From a run's Curves to its conclusions: stages, Eq. 1, and whether the probes agree.

`analyze` is the one function the per-run report, the study report and Algorithm 1 share; its
settings come from the config's `dynamics` section (docs/method.md explains each choice).

Eq. 1's share is checked against the logit lens's measured Python share on first differences
(the step-to-step changes): both curves fall with training time, so their levels correlate for
any run, even the scrambled control. `eq1_lens_check` then asks whether a language's agreement
exceeds the scrambled control's; only then can the check support Eq. 1.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax.dynamics import eq1 as eq1_lib
from babel_jax.dynamics import stages as stages_lib
from babel_jax.dynamics import stats
from babel_jax.dynamics import transfer
from babel_jax.dynamics.curves import Curves


# How curves are interpreted: the config's dynamics section itself (one smooth_window for stage
# detection and Eq. 1).
Settings = config_lib.Dynamics


@dataclasses.dataclass(frozen=True)
class Analysis:
  """What one run's curves say."""
  stages: stages_lib.Stages
  eq1: eq1_lib.Eq1Fit
  crossover_step: int | None  # the working language turns to L (logit lens)
  crossover_agrees: bool | None  # ... inside Transition
  transferring_peak_step: int | None  # transferring neurons start to drop
  transferring_agrees: bool | None
  eq1_vs_lens: float | None  # correlation of the step-to-step changes of Eq. 1's share and
  # the lens's Python share (first differences)
  knowledge_transfer: list[float | None] | None  # |P∩C|/|C| per checkpoint
  eq1_vs_lens_levels: float | None = None  # the same on the levels (high for any monotone pair)

  def to_dict(self) -> dict[str, Any]:
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    d['stages'], d['eq1'] = self.stages.to_dict(), self.eq1.to_dict()
    return d


def lens_share(curves: Curves) -> np.ndarray | None:
  """[C] the lens's probability-mass Python share, averaged over layers; None without a lens."""
  return None if curves.lens is None else curves.lens.primary_share_C


def change_correlation(a, b) -> float | None:
  """Pearson correlation of the first differences (step-to-step changes) of two curves: a
  shared trend in time does not make it high, only changes that move together."""
  return stages_lib.correlation(np.diff(np.asarray(a, np.float64)),
                                np.diff(np.asarray(b, np.float64)))


def eq1_lens_check(r_by_language: dict[str, list[float | None]],
                   scrambled: str | None) -> dict[str, dict[str, Any]]:
  """Per language but the scrambled control: does Eq. 1 agree with the lens (change
  correlations over seeds) more than on the scrambled control? Welch's test, two-sided, at
  1 - CONFIDENCE, in that direction; the verdict and its numbers in a sentence."""
  out = {}
  base = [r for r in r_by_language.get(scrambled, []) if r is not None] if scrambled else []
  for lang, rs in r_by_language.items():
    if lang == scrambled:
      continue
    values = [r for r in rs if r is not None]
    entry = {'r': stats.interval(values), 'scrambled': stats.interval(base),
             'difference': None, 'exceeds': False}
    if scrambled is None:
      entry['sentence'] = (f'{lang}: no scrambled control in this study, so the agreement '
                           f'({_r(entry["r"])}) has no baseline: the check cannot support Eq. 1 '
                           'on its own.')
    elif not values or not base:
      entry['sentence'] = (f'{lang}: no correlation to compare (readings: {len(values)}, '
                           f'scrambled {len(base)}): the check cannot support Eq. 1 at this '
                           'scale.')
    else:
      d = stats.difference(base, values)
      entry.update(difference=d, exceeds=bool(d['p'] is not None and d['diff'] > 0
                                              and d['p'] < 1 - stats.CONFIDENCE))
      test = (f'difference {d["diff"]:+.3f}, p {d["p"]:.3g}' if d['p'] is not None else
              f'difference {d["diff"]:+.3f}, no test: {d["reason"]}')
      entry['sentence'] = (
          f'{lang}: Eq. 1 agrees with the lens (r of step-to-step changes {_r(entry["r"])}) '
          f'against {_r(entry["scrambled"])} on the scrambled control ({test}): '
          + ('it exceeds the scrambled control\'s, so the check supports Eq. 1 here.'
             if entry['exceeds'] else
             'it does not exceed the scrambled control\'s, so the check cannot support Eq. 1 '
             'at this scale.'))
    out[lang] = entry
  return out


def knowledge_course(language: str, steps, transferred_ExC, retention_ExC=None,
                     primary: str = 'the primary language') -> dict[str, Any]:
  """Planted knowledge over continual training, from every seed's curve (rows) at the same
  checkpoints `steps`: (a) does knowledge transferred to L rise and then fall, and (b) does it
  fall faster than the primary's retention in the same runs (separation rather than plain
  forgetting)? The sentences say so with their intervals, or that it is not seen at this scale.

  The peak is the maximum of the mean curve over seeds; it must lie before the last checkpoint
  (an end-of-run maximum is not a peak). Rise = T(peak) - T(first checkpoint), fall = T(peak) -
  T(last), both paired within a seed, with a t interval over seeds; each seed's peak is read
  where the *other* seeds' mean curve peaks (leave-one-out), so that the noise of a seed does not
  choose its own peak (a maximum chosen on the same noise exceeds both ends by construction).
  (b): per seed, L's fall minus the primary's fall of retention over the same checkpoints. A
  verdict needs at least 2 seeds and an interval that excludes 0.
  """
  steps = np.asarray(steps)
  t = np.atleast_2d(np.asarray(transferred_ExC, np.float64))
  r = None if retention_ExC is None else np.atleast_2d(np.asarray(retention_ExC, np.float64))
  seeds, count = t.shape
  out: dict[str, Any] = {'language': language, 'seeds': seeds, 'steps': steps.tolist(),
                         'mean': t.mean(axis=0).tolist(), 'peak_step': None, 'rise': None,
                         'fall': None, 'at_peak': None, 'rise_and_fall': False,
                         'faster_than_retention': None, 'separation': False}
  if count < 3:
    out['sentence'] = (f'{language}: {count} checkpoints; a rise then a fall needs at least 3: '
                       'not seen at this scale.')
    out['separation_sentence'] = (f'{language}: no fall to compare with {primary}\'s '
                                  'retention: not seen at this scale.')
    return out
  mean = t.mean(axis=0)
  peak = int(np.argmax(mean))
  if seeds >= 2:
    own = [int(np.argmax(np.delete(t, s, axis=0).mean(axis=0))) for s in range(seeds)]
  else:
    own = [peak]
  at = np.asarray([t[s, p] for s, p in enumerate(own)])
  rise, fall = stats.interval(at - t[:, 0]), stats.interval(at - t[:, -1])
  out.update(peak_step=int(steps[peak]), rise=rise, fall=fall, at_peak=stats.interval(at),
             seed_peak_steps=[int(steps[p]) for p in own])
  excludes = lambda iv: iv['low'] is not None and iv['low'] > 0  # noqa: E731
  course = (f'mean over {seeds} seed{"s" * (seeds != 1)} {mean[0]:+.3f} at step {steps[0]}, '
            f'highest {mean[peak]:+.3f} at step {steps[peak]}, {mean[-1]:+.3f} at step '
            f'{steps[-1]}')
  paired = (f'rise (peak - first) {_r(rise, 3)}, fall (peak - last) {_r(fall, 3)}, '
            + ('each seed read at the other seeds\' peak' if seeds >= 2 else
               'read at its own peak'))
  head = f'{language}: knowledge transferred ({course})'
  if peak == count - 1:
    out['sentence'] = (f'{head}: no peak, the maximum is at the last checkpoint (an end-of-run '
                       'maximum is not a peak): no rise then fall is seen at this scale.')
  elif peak == 0:
    out['sentence'] = (f'{head}: highest at the first checkpoint, so no rise: no rise then fall '
                       'is seen at this scale.')
  elif seeds < 2:
    out['sentence'] = (f'{head}: {paired}; one seed gives no interval, so a rise then a fall is '
                       'not seen at this scale.')
  elif excludes(rise) and excludes(fall):
    out['rise_and_fall'] = True
    out['sentence'] = f'{head}: {paired}: both exclude 0, a rise then a fall.'
  else:
    which = [n for n, iv in (('rise', rise), ('fall', fall)) if not excludes(iv)]
    out['sentence'] = (f'{head}: {paired}; ' + (
        'the intervals of the rise and the fall include 0' if len(which) == 2 else
        f'the interval of the {which[0]} includes 0') + ', so a rise then a fall is not seen at '
        'this scale.')
  if r is None or r.shape != t.shape:
    out['separation_sentence'] = (f'{language}: no retention reading of {primary} in the same '
                                  f'runs, so whether {language}\'s knowledge falls faster than '
                                  'it is not known.')
    return out
  if 0 < peak < count - 1:
    d = stats.interval([(t[s, p] - t[s, -1]) - (r[s, p] - r[s, -1])
                        for s, p in enumerate(own)])
    out['faster_than_retention'] = d
    what = (f'{language}\'s fall from the peak minus {primary}\'s fall of retention over the '
            f'same checkpoints {_r(d, 3)}')
    if not out['rise_and_fall']:
      out['separation_sentence'] = (f'{what}; without a rise then a fall in {language}, a '
                                    'separation is not seen at this scale.')
    elif excludes(d):
      out['separation'] = True
      out['separation_sentence'] = (f'{what}: {language} falls faster than {primary}\'s '
                                    'retention, a separation rather than plain forgetting.')
    else:
      out['separation_sentence'] = (f'{what}: the interval includes 0 (or lies below it), so '
                                    'a separation rather than plain forgetting is not seen at '
                                    'this scale.')
  else:
    out['separation_sentence'] = (f'{language}: no peak before the last checkpoint, so no fall '
                                  f'to compare with {primary}\'s retention: a separation is not '
                                  'seen at this scale.')
  return out


def _r(iv: dict[str, Any], digits: int = 2) -> str:
  if iv['mean'] is None:
    return 'none'
  if iv['low'] is None:
    return f'{iv["mean"]:.{digits}f} (n={iv["n"]})'
  return (f'{iv["mean"]:.{digits}f} [{iv["low"]:.{digits}f}, {iv["high"]:.{digits}f}] '
          f'(n={iv["n"]})')


def analyze(curves: Curves, s: Settings) -> Analysis:
  """Stages of the performance curve, Eq. 1 on the loss, and the probes' events against them."""
  steps, w = curves.steps, s.smooth_window
  stages = stages_lib.detect(steps, curves.performance.values, w, s.slope_tolerance)
  fit = eq1_lib.fit(steps, curves.loss, stages, s)
  crossover = corr = levels = None
  measured = lens_share(curves)
  if measured is not None:
    crossover = stages_lib.crossover(steps, measured, w)
    corr = change_correlation(fit.share, measured)
    levels = stages_lib.correlation(fit.share, measured)
  peak = stages_lib.peak_step(steps, curves.transferring_neurons, w)
  kt = None
  if s.python_specific and curves.solved is not None:
    with open(s.python_specific) as f:
      specific = set(json.load(f))
    kt = [transfer.knowledge_transfer(specific, set(x)) for x in curves.solved]
  return Analysis(stages, fit, crossover, stages_lib.agrees(crossover, stages), peak,
                  stages_lib.agrees(peak, stages), corr, kt, levels)


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
  k = getattr(curves, 'knowledge', None)
  if k is not None:
    peak = stages_lib.interior_peak(k.transferred_C)
    out['knowledge'] = {
        'facts': len(k.names), 'transferred': k.transferred_C.tolist(),
        'transferred_per_fact_sd': k.transferred_CxJ.std(axis=1).tolist(),
        'retention': None if k.retention_C is None else k.retention_C.tolist(),
        'peak_step': None if peak is None else int(curves.steps[peak]),
        'peak': None if peak is None else float(k.transferred_C[peak])}
  if curves.lens is not None:
    out['lens'] = {'primary_top1': curves.lens.primary_top1_CxN.mean(1).tolist(),
                   'target_top1': curves.lens.target_top1_CxN.mean(1).tolist(),
                   'primary_mass_share': lens_share(curves).tolist()}
  return json.loads(json.dumps(out, default=_plain))


def _plain(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(type(x))
