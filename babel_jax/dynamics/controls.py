"""The controls' verdict: which instruments tell a planted clone from a scrambled language.

Per new language (real and planted) and seed, the instruments' readings of a continual run:
effective data transferred (against the reference run), the working language in a middle layer
early and late, transferring neurons, the stages found, and Eq. 1's P*. Over seeds: means with
95% t intervals. Then, for each instrument, whether it separates the positive control (the
clone) from the negative one (the scrambled language), and the clone from the partial clone:
Welch's interval of the difference must exclude zero. An instrument that cannot tell the clone
from the scrambled language is reported as not validated at this scale.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.data import planted
from babel_jax.dynamics import stats, transfer
from babel_jax.dynamics.analysis import Analysis
from babel_jax.dynamics.curves import Curves

# Instrument -> what it reads, and whether the clone should read higher than the scrambled
# language when the instrument sees transfer.
INSTRUMENTS = {
    'transfer_end': 'effective data transferred at the end of continual training, D_T / D',
    'transfer_mean': 'effective data transferred, D_T / D, mean over the checkpoints',
    'lens_early': 'primary (Python) share of the working language, middle layer, at a quarter '
                  'of continual training',
    'lens_late': 'primary (Python) share of the working language, middle layer, last checkpoint',
    'transferring_neurons': 'transferring neurons (primary and L), mean over the checkpoints',
    'p_star': "Eq. 1's P* at the end of Translation",
}
NUMBERS = (*INSTRUMENTS, 'translation_end', 'stabilization_start')


def _reading(curves: Curves, analysis: Analysis, reference: Curves | None) -> dict[str, Any]:
  """One continual run's readings (None where an instrument has nothing to say)."""
  out: dict[str, Any] = {'run': curves.run, 'translation_end': analysis.stages.translation_end,
                         'stabilization_start': analysis.stages.stabilization_start,
                         'p_star': analysis.eq1.p_star, 'eq1_problem': analysis.eq1.problem,
                         'eq1_alpha': analysis.eq1.alpha, 'eq1_beta': analysis.eq1.beta,
                         'transferring_neurons': float(np.mean(curves.transferring_neurons)),
                         'transfer_end': None, 'transfer_mean': None, 'lens_early': None,
                         'lens_late': None, 'lens_source': None}
  if reference is not None:
    et = transfer.effective_transfer(curves.tokens, curves.loss, reference.tokens,
                                     reference.loss)
    seen = np.isfinite(et.fraction)
    if seen.any():
      out.update(transfer_end=float(et.fraction[seen][-1]),
                 transfer_end_censored=bool(et.censored[seen][-1]),
                 transfer_mean=float(np.mean(et.fraction[seen])),
                 effective_transfer=et.to_dict())
  if curves.lens is not None:
    middle = curves.lens.python_mass_CxN.shape[1] // 2
    share = curves.lens.python_mass_CxN[:, middle]
    # Early: the checkpoint nearest a quarter of the run (right after the start the new ids
    # are untrained, so every language reads as the primary there).
    early = int(np.argmin(np.abs(curves.steps - curves.steps[-1] / 4)))
    out.update(lens_early=float(share[early]), lens_early_step=int(curves.steps[early]),
               lens_late=float(share[-1]), lens_layer=int(middle),
               lens_source=curves.lens.source)
  return out


def kind(language: str) -> str:
  """'clone', 'partial', 'scrambled' for a planted language, else 'real'."""
  found = planted.parse(language)
  return found[1] if found else 'real'


def _separation(rows: dict[str, Any], a: str, b: str, expect_higher: bool | None,
                validates: bool = True) -> list[dict[str, Any]]:
  """Per instrument: does Welch's interval of a - b exclude zero? With `expect_higher` the
  direction transfer predicts is checked; `validates` marks the pair that validates (the
  clone against the scrambled language)."""
  out = []
  for name in INSTRUMENTS:
    va = [s[name] for s in rows[a]['seeds'] if s[name] is not None]
    vb = [s[name] for s in rows[b]['seeds'] if s[name] is not None]
    entry = {'instrument': name, 'pair': [a, b], 'a': stats.interval(va),
             'b': stats.interval(vb)}
    if len(va) < 2 or len(vb) < 2:
      entry.update(difference=None, verdict=f'no interval (readings: {len(va)}, {len(vb)})')
    else:
      d = stats.difference(vb, va)  # a - b
      entry['difference'] = d
      if d['low'] > 0 or d['high'] < 0:
        higher = d['low'] > 0
        entry['verdict'] = f'separates ({a} {"higher" if higher else "lower"})'
        if expect_higher is not None and higher != expect_higher:
          entry['verdict'] += ', opposite to what transfer predicts'
      else:
        entry['verdict'] = 'does not separate at this scale'
    if expect_higher is not None:
      entry['expected'] = entry['verdict'].startswith('separates') and 'opposite' not in \
          entry['verdict']
      if validates:
        entry['validated'] = entry['expected']
    out.append(entry)
  return out


def table(dynamics: dict[str, list[tuple[Curves, Analysis]]],
          references: dict[str, list[Curves]] | None,
          controls: Sequence[str]) -> dict[str, Any]:
  """controls.json: every new language's readings per seed and over seeds, and the verdicts."""
  rows = {}
  for lang, seeds in dynamics.items():
    # Seed k reads against reference run k, or against the one reference run there is.
    refs = (references or {}).get(lang) or [None]
    readings = [_reading(c, a, refs[k % len(refs)]) for k, (c, a) in enumerate(seeds)]
    summary = {n: stats.interval([s[n] for s in readings if s[n] is not None]) for n in NUMBERS}
    # A continual run below every loss its reference reached gives only a lower bound.
    summary['transfer_end']['censored'] = sum(s.get('transfer_end_censored', False)
                                              for s in readings)
    rows[lang] = {'kind': kind(lang), 'seeds': readings, 'summary': summary}
  by_kind = {kind(lang): lang for lang in controls if lang in rows}
  separation = []
  if 'clone' in by_kind and 'scrambled' in by_kind:
    separation += _separation(rows, by_kind['clone'], by_kind['scrambled'], True)
  if 'partial' in by_kind and 'scrambled' in by_kind:
    separation += _separation(rows, by_kind['partial'], by_kind['scrambled'], True,
                              validates=False)
  if 'clone' in by_kind and 'partial' in by_kind:
    separation += _separation(rows, by_kind['clone'], by_kind['partial'], None)
  return {'instruments': INSTRUMENTS, 'languages': rows, 'separation': separation,
          'confidence': stats.CONFIDENCE}


def _pairs(t: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
  out: dict[tuple[str, str], list[dict[str, Any]]] = {}
  for e in t['separation']:
    out.setdefault(tuple(e['pair']), []).append(e)
  return out


def findings(t: dict[str, Any]) -> list[str]:
  """The table in a few plain sentences, for the top of the study report."""
  out = []
  for (a, b), entries in _pairs(t).items():
    named = lambda es: '; '.join(INSTRUMENTS[e['instrument']] for e in es)  # noqa: E731
    if any('validated' in e for e in entries):
      ok = [e for e in entries if e['validated']]
      not_ok = [e for e in entries if not e['validated']]
      out.append(f'Positive against negative control ({a} vs {b}): '
                 + (f'validated at this scale: {named(ok)}.' if ok else
                    'no instrument separates them as transfer predicts at this scale.')
                 + (f' Not validated at this scale: {named(not_ok)}.' if ok and not_ok else ''))
      continue
    seen = [e for e in entries if e['verdict'].startswith('separates')]
    if 'expected' in entries[0]:
      as_predicted = [e for e in seen if e['expected']]
      out.append(f'{a} against {b}: ' + (
          f'separated as transfer predicts by {named(as_predicted)}.' if as_predicted else
          'not separated as transfer predicts by any instrument at this scale.'))
    else:
      out.append(f'{a} against {b}: ' + (f'separated by {named(seen)}.' if seen else
                                         'no instrument tells them apart at this scale.'))
  edt = []
  for lang, row in t['languages'].items():
    iv = row['summary']['transfer_end']
    if iv['mean'] is not None:
      edt.append(f'{lang} {"≥ " if iv.get("censored") else ""}{_iv(iv)}')
  if edt:
    out.append('Effective data transferred at the end of continual training, as a fraction of '
               'the tokens seen: ' + ', '.join(edt) + ' (≥: a lower bound).')
  return out


def _iv(iv: dict[str, Any]) -> str:
  if iv['low'] is None:
    return f'{iv["mean"]:.2f} (n={iv["n"]})'
  return f'{iv["mean"]:.2f} [{iv["low"]:.2f}, {iv["high"]:.2f}]'
