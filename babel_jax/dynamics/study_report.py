"""The study's report: one Markdown page with plots, readable at a glance.

<study>/report/index.md: the stages per new language, Eq. 1 on the loss against the measured
working-language share, the mixture chosen (and why), and the comparison of the from-scratch
runs; plots stages.png, eq1.png, mixture.png, comparison.png and eq1.json next to it. The
experiment driver gathers the inputs; every number here comes from `analysis.analyze`, the
mixture files and comparison.json, so it matches the per-run reports and Algorithm 1.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from babel_jax import io
from babel_jax.dynamics import plots
from babel_jax.dynamics.analysis import Analysis
from babel_jax.dynamics.curves import Curves

MIXTURES = ('original', 'optimized')


@dataclasses.dataclass(frozen=True)
class Study:
  """What the report shows; gathered by the experiment driver."""
  languages: tuple[str, ...]  # primary first
  dynamics: dict[str, tuple[Curves, Analysis]]  # per new language
  run_reports: dict[str, str]  # per new language: its report page, relative to report/
  mixtures: dict[str, dict[str, Any]]  # original / optimized MixtureSpec JSON
  comparison: dict[str, Any]  # comparison.json
  phases: list[dict[str, Any]]  # phase records
  seeds: int
  scratch_steps: int
  same_mixtures: bool  # the optimized mixture equals the original


def eq1_table(study: Study) -> dict[str, Any]:
  """Per new language: Eq. 1's share at every checkpoint, the lens's measured Python share,
  their correlation and the fit (eq1.json)."""
  out = {}
  for lang, (curves, a) in study.dynamics.items():
    measured = None if curves.lens is None else curves.lens.python_share_C.tolist()
    out[lang] = {**a.eq1.to_dict(), 'steps': curves.steps.tolist(), 'measured_share': measured,
                 'correlation': a.eq1_vs_lens}
  return out


def _fmt(x, digits=4) -> str:
  return '–' if x is None else f'{x:.{digits}f}'


def _interval(iv, digits=4) -> str:
  if iv['low'] is None:
    return f'{_fmt(iv["mean"], digits)} (n={iv["n"]})'
  return f'{_fmt(iv["mean"], digits)} [{_fmt(iv["low"], digits)}, {_fmt(iv["high"], digits)}]'


def _stage_plot(plt, study: Study):
  langs = list(study.dynamics)
  fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
  for ax, lang in zip(axes[0], langs):
    curves, a = study.dynamics[lang]
    plots.stage_bands(ax, a.stages)
    ax.plot(curves.steps, curves.performance.values, 'o', ms=3, color='gray', label='measured')
    ax.plot(curves.steps, a.stages.smoothed, '-', color='k', label='smoothed')
    ax.set_title(f'{lang}: {curves.performance.source}', fontsize=9)
    ax.set_xlabel('continual step')
    ax.legend(fontsize=6)
  return fig


def _eq1_plot(plt, study: Study):
  langs = list(study.dynamics)
  fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
  for ax, lang in zip(axes[0], langs):
    curves, a = study.dynamics[lang]
    ax.plot(curves.steps, a.eq1.share, '-o', ms=3, label='Eq. 1 from the loss')
    if curves.lens is not None:
      ax.plot(curves.steps, curves.lens.python_share_C, '-s', ms=3,
              label='logit lens (Python mass)')
    r = a.eq1_vs_lens
    ax.set_title(f'{lang}: r = {r:.2f}' if r is not None else f'{lang}: r n/a', fontsize=9)
    ax.set(ylim=(-0.2, 1.2), xlabel='continual step', ylabel='Python system share')
    ax.legend(fontsize=6)
  return fig


def _mixture_plot(plt, study: Study):
  fig, ax = plt.subplots(figsize=(5.5, 3.2))
  x = np.arange(len(study.languages))
  for i, name in enumerate(MIXTURES):
    ax.bar(x + (i - 0.5) * 0.4, [study.mixtures[name]['weights'][lang]
                                 for lang in study.languages], 0.4, label=name)
  ax.set_xticks(x, study.languages)
  ax.set_ylabel('token share')
  ax.legend(fontsize=7)
  return fig


def _comparison_plot(plt, rows):
  metrics = sorted({r['metric'] for r in rows})
  fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.2), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    sel = [r for r in rows if r['metric'] == metric]
    x = np.arange(len(sel))
    for i, name in enumerate(MIXTURES):
      means = [r[name]['mean'] for r in sel]
      err = [0 if r[name]['low'] is None else r[name]['mean'] - r[name]['low'] for r in sel]
      ax.bar(x + (i - 0.5) * 0.4, means, 0.4, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, [r['language'] for r in sel])
    ax.set_ylabel(metric + (' (lower is better)' if sel[0]['lower_is_better'] else ''))
    ax.legend(fontsize=7)
  return fig


def _plots(report_dir: str, study: Study) -> list[str]:
  plt = plots.pyplot()
  figures = {'mixture.png': _mixture_plot(plt, study)}
  if study.dynamics:
    figures.update({'stages.png': _stage_plot(plt, study), 'eq1.png': _eq1_plot(plt, study)})
  if study.comparison['rows']:
    figures['comparison.png'] = _comparison_plot(plt, study.comparison['rows'])
  return [plots.save_figure(fig, report_dir, name, dpi=100) for name, fig in figures.items()]


def _stages_section(study: Study) -> list[str]:
  lines = ['## Stages per new language', '',
           '| language | performance curve | translation ends | stabilization starts | '
           'working-language crossover | transferring neurons peak |',
           '| --- | --- | --- | --- | --- | --- |']
  for lang, (curves, a) in study.dynamics.items():
    p = curves.performance
    lines.append(f'| {lang} | {p.name} ({p.why}) | {a.stages.translation_end} | '
                 f'{a.stages.stabilization_start} | {a.crossover_step} (in Transition: '
                 f'{a.crossover_agrees}) | {a.transferring_peak_step} (in Transition: '
                 f'{a.transferring_agrees}) |')
  return lines + ['', '![stages](stages.png)', '', 'Per-run probe reports: ' + ', '.join(
      f'[{lang}]({path})' for lang, path in study.run_reports.items()), '']


def _eq1_section(study: Study) -> list[str]:
  lines = ['## Eq. 1 against the measured working language', '',
           'P(l) = (alpha - l) / (alpha - beta) on the held-out loss of the new language; '
           'measured: the logit lens\'s Python probability-mass share, averaged over layers. '
           'The same fit gives P* to Algorithm 1 below.', '',
           '| language | beta | alpha | rule | P* (step) | correlation with the measured share |',
           '| --- | --- | --- | --- | --- | --- |']
  for lang, (_, a) in study.dynamics.items():
    e = a.eq1
    p = f'{e.p_star:.3f} ({e.best_step})' if e.p_star is not None else f'– ({e.problem})'
    lines.append(f'| {lang} | {_fmt(e.beta)} | {_fmt(e.alpha)} | {e.rule} | {p} | '
                 f'{_fmt(a.eq1_vs_lens, 3)} |')
  return lines + ['', '![eq1](eq1.png)', '']


def _mixture_section(study: Study) -> list[str]:
  opt = study.mixtures['optimized']['provenance']
  lines = ['## The mixture chosen', '',
           f'Original: {study.mixtures["original"]["provenance"].get("strategy")}. Optimized: '
           f'Algorithm 1 with a {study.languages[0]} budget of {opt["python_tokens"]:.4g} '
           'tokens.', '', '| language | original share | optimized share | optimized tokens | '
           'P* | best step | note |', '| --- | --- | --- | --- | --- | --- | --- |']
  for lang in study.languages:
    fit = opt['fits'].get(lang, {})
    note = opt['kept_original'].get(lang, '')
    if lang in opt.get('capped', {}):
      note = f'capped at the {opt["capped"][lang]["available"]:.4g} tokens available'
    lines.append(f'| {lang} | {study.mixtures["original"]["weights"][lang]:.3f} | '
                 f'{study.mixtures["optimized"]["weights"][lang]:.3f} | '
                 f'{opt["target_tokens"][lang]:.4g} | {_fmt(fit.get("p_star"), 3)} | '
                 f'{fit.get("best_step", "–")} | {note} |')
  if study.same_mixtures:
    lines += ['', '**The optimized mixture equals the original** (every new language was capped '
              'at the tokens available or kept its original share): its from-scratch runs would '
              'repeat the original ones step for step, so the original runs stand for both and '
              'the comparison below is even by construction.']
  return lines + ['', '![mixture](mixture.png)', '']


def _comparison_section(study: Study, made: list[str]) -> list[str]:
  c = study.comparison
  lines = ['## From-scratch comparison', '',
           f'Final checkpoints of {study.seeds} seeds per mixture, {study.scratch_steps} steps '
           f'each (equal compute). Mean [{c["confidence"]:.0%} interval]; the winner is the '
           'mixture whose advantage\'s Welch interval excludes zero.', '',
           '| language | metric | original | optimized | optimized - original | winner |',
           '| --- | --- | --- | --- | --- | --- |']
  for r in c['rows']:
    d = r['difference']
    diff = _fmt(d['diff']) + ('' if d['low'] is None else
                              f' [{_fmt(d["low"])}, {_fmt(d["high"])}]')
    lines.append(f'| {r["language"]} | {r["metric"]} | {_interval(r["original"])} | '
                 f'{_interval(r["optimized"])} | {diff} | **{r["winner"]}** |')
  if 'comparison.png' in made:
    lines += ['', '![comparison](comparison.png)']
  return lines + ['']


def write(report_dir: str, study: Study, extra_sections: list[list[str]] = ()) -> str:
  """Writes report_dir/index.md, its plots and eq1.json; returns the page's path.
  `extra_sections` (lists of Markdown lines) go first, after the header."""
  os.makedirs(report_dir, exist_ok=True)
  made = _plots(report_dir, study)
  io.write_json(os.path.join(report_dir, 'eq1.json'), eq1_table(study), indent=1)
  lines = ['# Babel Tower study', '',
           f'Primary language **{study.languages[0]}**; new languages '
           f'**{", ".join(study.dynamics)}**; {study.seeds} seeds per mixture. Config: '
           '`../config.json`; method: docs/method.md. Phases (seconds): '
           + ', '.join(f'{p["name"]} {p["seconds"]:.0f}' for p in study.phases) + '.', '']
  for section in (*extra_sections, _stages_section(study), _eq1_section(study),
                  _mixture_section(study), _comparison_section(study, made)):
    lines += section
  lines += ['Numbers: `../dynamics.json`, `../mixture/original.json`, '
            '`../mixture/optimized.json`, `../comparison.json`, `eq1.json`.', '']
  path = os.path.join(report_dir, 'index.md')
  io.atomic_write(path, '\n'.join(lines))
  return path
