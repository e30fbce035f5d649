"""The controls' verdict: which instruments tell a planted clone from a scrambled language.

Per new language (real and planted) and seed, the instruments' readings of a continual run:
effective data transferred (against a from-scratch reference run: seed k reads against reference
run k mod R, R the reference seeds, so the reference's own noise is in the interval), the working
language in a middle layer early and late, transferring neurons, the stages found, Eq. 1's P*,
the planted knowledge transferred to L (at the last checkpoint and at its peak before it), and
the held-out loss at continual step 0 beside the reference's. Over seeds: means with 95% t
intervals. A censored transfer reading (the continual run below every loss its reference reached:
only a lower bound) is counted and kept out of the intervals and the tests.

Then, per pair of controls, one Welch test per instrument, Holm-Bonferroni adjusted over the
pair's tests together. An instrument separates a pair only when its Holm-adjusted p is below
1 - CONFIDENCE (an interval with no spread, or too few readings, is no test and separates
nothing); it is validated when it separates the positive control (the clone) from the negative
one (the scrambled language) in the direction transfer predicts (the clone higher). The
functions below `reading` take plain readings, so the verdict can be checked by hand.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.data import planted
from babel_jax.dynamics import stages as stages_lib
from babel_jax.dynamics import stats, transfer
from babel_jax.dynamics.analysis import Analysis
from babel_jax.dynamics.curves import Curves
from babel_jax.dynamics.stats import interval_text as _interval

# Instrument -> what it reads; transfer predicts the clone reads higher than the scrambled
# language on every one of them.
INSTRUMENTS = {
    'transfer_end': 'effective data transferred at the end of continual training, D_T / D_F',
    'transfer_mean': 'effective data transferred, D_T / D_F, mean over the checkpoints',
    'lens_early': 'primary (Python) share of the working language, middle layer, at a quarter '
                  'of continual training',
    'lens_late': 'primary (Python) share of the working language, middle layer, last checkpoint',
    'transferring_neurons': 'transferring neurons (primary and L), mean over the checkpoints',
    'p_star': "Eq. 1's P* at the end of Translation",
    'knowledge_end': 'planted knowledge transferred to L (untaught twin minus taught body loss), '
                     'last checkpoint',
    'knowledge_peak': 'planted knowledge transferred to L, its maximum over the checkpoints '
                      'before the last (none when the maximum is at the last)',
}
# Beside the instruments: where the stages fall, and where the continual run and its reference
# start (the held-out loss of L at step 0), so a transfer reading can be read against both.
STARTS = {
    'loss_at_step0': 'held-out loss of L at continual step 0 (the primary model)',
    'reference_loss_at_step0': "held-out loss of L at the reference's step 0 (untrained)",
}
NUMBERS = (*INSTRUMENTS, 'translation_end', 'stabilization_start', *STARTS)
CENSORABLE = ('transfer_end', 'transfer_mean')  # readings that can be a lower bound only
# (kind a, kind b, transfer predicts a higher (None: no prediction), the pair validates)
PAIRS = (('clone', 'scrambled', True, True), ('partial', 'scrambled', True, False),
         ('clone', 'partial', None, False))


def alpha() -> float:
  """The tests' level: 1 - CONFIDENCE, so a separation matches a 95% interval."""
  return 1.0 - stats.CONFIDENCE


def transfer_reading(tokens, loss, ref_tokens, ref_loss) -> dict[str, Any]:
  """D_T / D_F at the end and averaged over the run (a mean with any censored checkpoint is a
  bound too); None where censored, with a flag that counts it instead."""
  et = transfer.effective_transfer(tokens, loss, ref_tokens, ref_loss)
  seen = np.isfinite(et.fraction)
  if not seen.any():
    return {}
  end_censored, mean_censored = bool(et.censored[seen][-1]), bool(et.censored[seen].any())
  end, mean = float(et.fraction[seen][-1]), float(np.mean(et.fraction[seen]))
  return {'transfer_end': None if end_censored else end, 'transfer_end_censored': end_censored,
          'transfer_mean': None if mean_censored else mean,
          'transfer_mean_censored': mean_censored,
          'transfer_end_lower_bound': end if end_censored else None,
          'effective_transfer': et.to_dict()}


def reading(curves: Curves, analysis: Analysis, reference: Curves | None) -> dict[str, Any]:
  """One continual run's readings (None where an instrument has nothing to say)."""
  out: dict[str, Any] = {'run': curves.run, 'translation_end': analysis.stages.translation_end,
                         'stabilization_start': analysis.stages.stabilization_start,
                         'p_star': analysis.eq1.p_star, 'eq1_problem': analysis.eq1.problem,
                         'eq1_alpha': analysis.eq1.alpha, 'eq1_beta': analysis.eq1.beta,
                         'transferring_neurons': float(np.mean(curves.transferring_neurons)),
                         'transfer_end': None, 'transfer_mean': None, 'lens_early': None,
                         'lens_late': None, 'lens_source': None,
                         'loss_at_step0': _loss_at_step0(curves),
                         'reference_loss_at_step0': None, 'reference': None}
  out.update(knowledge_reading(getattr(curves, 'knowledge', None), curves.steps))
  if reference is not None:
    out.update(reference=reference.run, reference_loss_at_step0=_loss_at_step0(reference),
               **transfer_reading(curves.tokens, curves.loss, reference.tokens,
                                  reference.loss))
  if curves.lens is not None:
    middle = curves.lens.primary_mass_CxN.shape[1] // 2
    share = curves.lens.primary_mass_CxN[:, middle]
    # Early: the checkpoint nearest a quarter of the run (right after the start the new ids
    # are untrained, so every language reads as the primary there).
    early = int(np.argmin(np.abs(curves.steps - curves.steps[-1] / 4)))
    out.update(lens_early=float(share[early]), lens_early_step=int(curves.steps[early]),
               lens_late=float(share[-1]), lens_layer=int(middle),
               lens_source=curves.lens.source)
  return out


def knowledge_reading(k, steps) -> dict[str, Any]:
  """knowledge_end (knowledge transferred to L at the last checkpoint) and knowledge_peak (its
  maximum before the last checkpoint, None when the maximum is at the last: no peak); both None
  without planted knowledge (a `curves.Knowledge` or None)."""
  if k is None:
    return {'knowledge_end': None, 'knowledge_peak': None, 'knowledge_peak_step': None}
  values = k.transferred_C
  peak = stages_lib.interior_peak(values)
  return {'knowledge_end': float(values[-1]),
          'knowledge_peak': None if peak is None else float(values[peak]),
          'knowledge_peak_step': None if peak is None else int(np.asarray(steps)[peak])}


def _loss_at_step0(curves: Curves) -> float | None:
  """The held-out loss of L at step 0, None when the run kept no step 0."""
  return float(curves.loss[0]) if len(curves.steps) and curves.steps[0] == 0 else None


def kind(language: str) -> str:
  """'clone', 'partial', 'scrambled' for a planted language, else 'real'."""
  found = planted.parse(language)
  return found[1] if found else 'real'


def summarise_controls(readings: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """Per number: the interval over seeds of the readings that are numbers; a censorable one
  also counts its censored readings (left out)."""
  summary = {n: stats.interval([r.get(n) for r in readings if r.get(n) is not None])
             for n in NUMBERS}
  for n in CENSORABLE:
    summary[n]['censored'] = sum(bool(r.get(f'{n}_censored')) for r in readings)
  bounds = [r['transfer_end_lower_bound'] for r in readings
            if r.get('transfer_end_lower_bound') is not None]
  summary['transfer_end']['censored_min'] = min(bounds) if bounds else None
  return summary


def row(language: str, readings: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """A language's row of the table: its kind, its readings per seed and their summary."""
  return {'kind': kind(language), 'seeds': list(readings), 'summary': summarise_controls(readings)}


def compare_pair(rows: dict[str, Any], a: str, b: str, expect_higher: bool | None,
                 validates: bool = False) -> list[dict[str, Any]]:
  """Per instrument, Welch's test of a - b, Holm-adjusted over this pair's tests. With
  `expect_higher`, `as_predicted` says whether it separates in the direction transfer predicts;
  `validates` marks the pair where that validates an instrument (`validated`)."""
  out = []
  for name in INSTRUMENTS:
    va = [s[name] for s in rows[a]['seeds'] if s.get(name) is not None]
    vb = [s[name] for s in rows[b]['seeds'] if s.get(name) is not None]
    d = stats.difference(vb, va)  # mean(a) - mean(b)
    out.append({'instrument': name, 'pair': [a, b], 'a': stats.interval(va),
                'b': stats.interval(vb), 'difference': d, 'p': d['p'], 'p_holm': None,
                'censored': [rows[a]['summary'][name].get('censored', 0),
                             rows[b]['summary'][name].get('censored', 0)]})
  tested = [e for e in out if e['p'] is not None]
  for e, p in zip(tested, stats.holm([e['p'] for e in tested])):
    e['p_holm'] = p
  for e in out:
    e['tests'] = len(tested)
    e.update(_verdict(e, a, expect_higher))
    if expect_higher is not None and validates:
      e['validated'] = e['as_predicted']
  return out


def _verdict(e: dict[str, Any], a: str, expect_higher: bool | None) -> dict[str, Any]:
  """Whether an entry separates its pair (after Holm), in which direction, and in words."""
  d = e['difference']
  if e['p'] is None:
    na, nb = e['a']['n'], e['b']['n']
    why = f'fewer than 2 readings a side ({na}, {nb})' if min(na, nb) < 2 else d['reason']
    v = {'separates': False, 'higher': None, 'verdict': f'no test ({why})'}
  elif e['p_holm'] < alpha():
    higher = d['diff'] > 0
    v = {'separates': True, 'higher': higher,
         'verdict': f'separates ({a} {"higher" if higher else "lower"}; p {e["p"]:.3g}, '
                    f'Holm {e["p_holm"]:.3g})'}
    if expect_higher is not None and higher != expect_higher:
      v['verdict'] += ', opposite to what transfer predicts'
  elif e['p'] < alpha():
    v = {'separates': False, 'higher': None,
         'verdict': f'does not separate after the Holm correction (p {e["p"]:.3g}, Holm '
                    f'{e["p_holm"]:.3g} over {e["tests"]} tests)'}
  else:
    v = {'separates': False, 'higher': None,
         'verdict': f'does not separate at this scale (p {e["p"]:.3g})'}
  if expect_higher is not None:
    v['as_predicted'] = v['separates'] and v['higher'] == expect_higher
  return v


def separation(rows: dict[str, Any], controls: Sequence[str]) -> list[dict[str, Any]]:
  """Every pair of PAIRS the study's controls form, instrument by instrument."""
  by_kind = {kind(lang): lang for lang in controls if lang in rows}
  out = []
  for ka, kb, expect, validates in PAIRS:
    if ka in by_kind and kb in by_kind:
      out += compare_pair(rows, by_kind[ka], by_kind[kb], expect, validates)
  return out


def verdicts(readings: dict[str, Sequence[dict[str, Any]]],
             controls: Sequence[str]) -> dict[str, Any]:
  """controls.json from readings per language and seed: the rows and the verdicts."""
  rows = {lang: row(lang, rs) for lang, rs in readings.items()}
  return {'instruments': INSTRUMENTS, 'starts': STARTS, 'languages': rows,
          'separation': separation(rows, controls), 'confidence': stats.CONFIDENCE,
          'correction': 'Holm-Bonferroni over each pair\'s Welch tests'}


def table(dynamics: dict[str, list[tuple[Curves, Analysis]]],
          references: dict[str, list[Curves]] | None,
          controls: Sequence[str]) -> dict[str, Any]:
  """controls.json: every new language's readings per seed and over seeds, and the verdicts.
  Seed k reads against reference run k mod R (R reference runs of the language)."""
  readings = {}
  for lang, seeds in dynamics.items():
    refs = (references or {}).get(lang) or [None]
    readings[lang] = [reading(c, a, refs[k % len(refs)]) for k, (c, a) in enumerate(seeds)]
  return verdicts(readings, controls)


def _pairs(t: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
  out: dict[tuple[str, str], list[dict[str, Any]]] = {}
  for e in t['separation']:
    out.setdefault(tuple(e['pair']), []).append(e)
  return out


def _named(entries: Sequence[dict[str, Any]]) -> str:
  """Instruments with their raw and Holm-adjusted p, for a sentence."""
  return '; '.join(f'{INSTRUMENTS[e["instrument"]]} (p {e["p"]:.3g}, Holm {e["p_holm"]:.3g})'
                   if e['p'] is not None else INSTRUMENTS[e['instrument']] for e in entries)


def _caveats(entries: Sequence[dict[str, Any]]) -> str:
  """What the Holm correction took away, and which instruments had no test."""
  out = ''
  lost = [e for e in entries if e['p'] is not None and not e['separates'] and e['p'] < alpha()]
  if lost:
    out += f' Separated before but not after the Holm correction: {_named(lost)}.'
  untested = [e for e in entries if e['p'] is None]
  if untested:
    out += (' No test (no spread over seeds, or fewer than 2 readings a side): '
            + ', '.join(e['instrument'] for e in untested) + '.')
  return out


def _pair_finding(a: str, b: str, entries: Sequence[dict[str, Any]]) -> str:
  """One pair's verdict in a sentence or three."""
  if any('validated' in e for e in entries):
    ok = [e for e in entries if e['validated']]
    not_ok = [e for e in entries if not e['validated']]
    return (f'Positive against negative control ({a} vs {b}): '
            + (f'validated at this scale: {_named(ok)}.' if ok else
               'no instrument separates them as transfer predicts at this scale.')
            + (' Not validated at this scale: '
               + ', '.join(e['instrument'] for e in not_ok) + '.' if ok and not_ok else '')
            + _caveats(entries))
  seen = [e for e in entries if e['separates']]
  if 'as_predicted' in entries[0]:
    as_predicted = [e for e in seen if e['as_predicted']]
    return f'{a} against {b}: ' + (
        f'separated as transfer predicts by {_named(as_predicted)}.' if as_predicted else
        'not separated as transfer predicts by any instrument at this scale.') + _caveats(entries)
  return f'{a} against {b}: ' + (f'separated by {_named(seen)}.' if seen else
                                 'no instrument tells them apart at this scale.') \
      + _caveats(entries)


def findings(t: dict[str, Any]) -> list[str]:
  """The table in a few plain sentences, for the top of the study report."""
  out = [_pair_finding(a, b, entries) for (a, b), entries in _pairs(t).items()]
  if out:
    out.insert(0, f'Each pair of controls is tested instrument by instrument (Welch), '
                  f'Holm-Bonferroni adjusted over the pair\'s tests; a separation needs an '
                  f'adjusted p below {alpha():.2g}.')
  edt = []
  for lang, row_ in t['languages'].items():
    iv = row_['summary']['transfer_end']
    censored = iv.get('censored', 0)
    if iv['mean'] is not None:
      edt.append(f'{lang} {_interval(iv, 2)}'
                 + (f' ({censored} censored left out)' if censored else ''))
    elif censored:
      edt.append(f'{lang}: all {censored} censored (≥ {iv["censored_min"]:.2f})')
  if edt:
    out.append('Effective data transferred at the end of continual training, D_T / D_F: '
               + ', '.join(edt) + '. A censored reading (the continual run ended below every '
               'loss its reference reached) is only a lower bound and is left out of the '
               'intervals and tests.')
  return out
