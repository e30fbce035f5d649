"""The study's report: one Markdown page with plots, readable at a glance.

<study>/report/index.md: the findings in a few sentences, the controls (which instruments tell
a planted clone from a scrambled language), the planted knowledge over continual training (does
knowledge transferred to L rise and then fall, and faster than the primary's retention?), the
stages per new language and seed, Eq. 1 on the loss against the measured working-language share,
the mixtures chosen (and why), and the mixture bake-off of the from-scratch runs; plots
controls.png, knowledge.png, stages.png, eq1.png, mixture.png, bakeoff.png, and eq1.json and
knowledge.json next to it. The experiment driver gathers the inputs; every number here comes
from `analysis.analyze` and mixtures.json (dynamics/bakeoff.py), so it matches the per-run
reports and Algorithm 1.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from babel_jax import io
from babel_jax.dynamics import analysis as analysis_lib
from babel_jax.dynamics import bakeoff as bakeoff_lib
from babel_jax.dynamics import controls as controls_lib
from babel_jax.dynamics import plots
from babel_jax.dynamics import stats
from babel_jax.dynamics.analysis import Analysis
from babel_jax.dynamics.curves import Curves
from babel_jax.dynamics.stats import interval_text as _interval, number_text as _fmt

@dataclasses.dataclass(frozen=True)
class Study:
  """What the report shows; gathered by the experiment driver."""
  languages: tuple[str, ...]  # the real languages, primary first
  dynamics: dict[str, list[tuple[Curves, Analysis]]]  # per new language, one per seed
  run_reports: dict[str, list[str]]  # per new language and seed: its page, relative to report/
  phases: list[dict[str, Any]]  # phase records
  seeds: int
  bakeoff: dict[str, Any] | None = None  # mixtures.json (experiment/bakeoff.py)
  controls: dict[str, Any] | None = None  # controls.json (dynamics/controls.py)


def eq1_table(study: Study) -> dict[str, Any]:
  """Per new language: Eq. 1's share at every checkpoint, the lens's measured Python share,
  the correlation of their step-to-step changes (and of their levels) and the fit (eq1.json)."""
  out = {}
  for lang, seeds in study.dynamics.items():
    out[lang] = []
    for curves, a in seeds:
      measured = analysis_lib.lens_share(curves)
      out[lang].append({**a.eq1.to_dict(), 'run': curves.run, 'steps': curves.steps.tolist(),
                        'measured_share': None if measured is None else measured.tolist(),
                        'correlation': a.eq1_vs_lens,
                        'correlation_levels': a.eq1_vs_lens_levels})
  return out


def scrambled_language(study: Study) -> str | None:
  """The scrambled control among the new languages, the baseline of the Eq. 1-vs-lens check."""
  return next((lang for lang in study.dynamics if controls_lib.kind(lang) == 'scrambled'), None)


def eq1_check(study: Study) -> dict[str, dict[str, Any]]:
  """Per new language: does Eq. 1's agreement with the lens exceed the scrambled control's?"""
  return analysis_lib.eq1_lens_check(
      {lang: [a.eq1_vs_lens for _, a in seeds] for lang, seeds in study.dynamics.items()},
      scrambled_language(study))


def knowledge_courses(study: Study) -> dict[str, dict[str, Any]]:
  """Per new language whose continual runs read planted knowledge: the course over the
  checkpoints all those seeds share (analysis.knowledge_course: rise and fall, and the fall
  against the primary's retention), with per-checkpoint intervals over seeds for the plot and
  the per-fact spread (quartiles of the per-fact readings, pooled over seeds)."""
  out = {}
  for lang, seeds in study.dynamics.items():
    read = [(np.asarray(c.steps), c.knowledge) for c, _ in seeds
            if getattr(c, 'knowledge', None) is not None]
    if not read:
      continue
    common = sorted(set.intersection(*(set(st.tolist()) for st, _ in read)))
    if not common:
      continue
    at = [np.searchsorted(st, common) for st, _ in read]
    t_ExC = np.stack([k.transferred_C[i] for (_, k), i in zip(read, at)])
    per_fact = np.concatenate([k.transferred_CxJ[i] for (_, k), i in zip(read, at)], axis=1)
    r_ExC = None
    if all(k.retention_C is not None for _, k in read):
      r_ExC = np.stack([k.retention_C[i] for (_, k), i in zip(read, at)])
    primary = read[0][1].primary
    course = analysis_lib.knowledge_course(lang, np.asarray(common), t_ExC, r_ExC, primary)
    course.update(
        kind=controls_lib.kind(lang), primary=primary, facts=len(read[0][1].names),
        seeds_without=len(seeds) - len(read),
        transferred=[stats.interval(t_ExC[:, c]) for c in range(len(common))],
        retention=None if r_ExC is None else [stats.interval(r_ExC[:, c])
                                              for c in range(len(common))],
        per_fact_quartiles=np.percentile(per_fact, [25, 50, 75], axis=1).T.tolist(),
        # The facts as the samples: each fact's reading at the last checkpoint, seeds averaged.
        last_over_facts=stats.interval(np.mean(
            [k.transferred_CxJ[i][-1] for (_, k), i in zip(read, at)], axis=0).tolist()))
    out[lang] = course
  return out


def _stage_plot(plt, study: Study):
  langs = list(study.dynamics)
  fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
  for ax, lang in zip(axes[0], langs):
    (curves, a), *others = study.dynamics[lang]
    plots.stage_bands(ax, a.stages)  # the first seed's bands
    ax.plot(curves.steps, curves.performance.values, 'o', ms=3, color='gray', label='measured')
    ax.plot(curves.steps, a.stages.smoothed, '-', color='k', label='smoothed (seed 0)')
    for c, other in others:
      ax.plot(c.steps, other.stages.smoothed, '-', color='k', alpha=0.35, lw=0.8)
    ax.set_title(f'{lang}: {curves.performance.source}', fontsize=9)
    ax.set_xlabel('continual step')
    ax.legend(fontsize=6)
  return fig


def _eq1_plot(plt, study: Study):
  langs = list(study.dynamics)
  fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
  for ax, lang in zip(axes[0], langs):
    (curves, a), *others = study.dynamics[lang]
    ax.plot(curves.steps, a.eq1.share, '-o', ms=3, label='Eq. 1 from the loss')
    if curves.lens is not None:
      ax.plot(curves.steps, analysis_lib.lens_share(curves), '-s', ms=3,
              label=f'{curves.lens.source} lens (Python mass)')
    for c, other in others:
      ax.plot(c.steps, other.eq1.share, '-', color='C0', alpha=0.35, lw=0.8)
    r = a.eq1_vs_lens
    ax.set_title(f'{lang}: r of changes = {r:.2f}' if r is not None else f'{lang}: r n/a',
                 fontsize=9)
    ax.set(ylim=(-0.2, 1.2), xlabel='continual step', ylabel='Python system share')
    ax.legend(fontsize=6)
  return fig


def _mixture_plot(plt, bake: dict[str, Any]):
  fig, ax = plt.subplots(figsize=(5.5, 3.2))
  langs, names = bake['languages'], list(bake['weights'])
  x, width = np.arange(len(langs)), 0.8 / len(names)
  for i, name in enumerate(names):
    ax.bar(x + (i - (len(names) - 1) / 2) * width,
           [bake['weights'][name][lang] for lang in langs], width, label=name)
  ax.set_xticks(x, langs)
  ax.set_ylabel('token share')
  ax.legend(fontsize=7)
  return fig


def _controls_plot(plt, t: dict[str, Any]):
  langs = list(t['languages'])
  shown = ('transfer_end', 'lens_early', 'lens_late', 'transferring_neurons')
  if any(t['languages'][lang]['summary'].get('knowledge_end', {}).get('n') for lang in langs):
    shown += ('knowledge_end',)
  fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.2), squeeze=False)
  for ax, name in zip(axes[0], shown):
    ivs = [t['languages'][lang]['summary'][name] for lang in langs]
    means = [np.nan if iv['mean'] is None else iv['mean'] for iv in ivs]
    err = [0 if iv['low'] is None else iv['mean'] - iv['low'] for iv in ivs]
    colours = ['C2' if t['languages'][l]['kind'] == 'clone' else 'C3' if
               t['languages'][l]['kind'] == 'scrambled' else 'C1' if
               t['languages'][l]['kind'] == 'partial' else 'C0' for l in langs]
    ax.bar(range(len(langs)), means, yerr=err, capsize=3, color=colours)
    ax.set_xticks(range(len(langs)), langs, rotation=45, ha='right', fontsize=7)
    ax.set_title(name, fontsize=9)
  return fig


def _band(ax, steps, ivs, colour, label):
  """A mean curve with its 95% interval over seeds as a band (no band with one seed)."""
  mean = np.asarray([np.nan if iv['mean'] is None else iv['mean'] for iv in ivs])
  ax.plot(steps, mean, '-o', ms=3, color=colour, label=label)
  if all(iv['low'] is not None for iv in ivs):
    ax.fill_between(steps, [iv['low'] for iv in ivs], [iv['high'] for iv in ivs], color=colour,
                    alpha=0.2, lw=0)


def _knowledge_plot(plt, courses: dict[str, dict[str, Any]]):
  langs = list(courses)
  fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
  for ax, lang in zip(axes[0], langs):
    c = courses[lang]
    steps = np.asarray(c['steps'])
    q = np.asarray(c['per_fact_quartiles'])
    ax.fill_between(steps, q[:, 0], q[:, 2], color='C0', alpha=0.12, lw=0,
                    label='per fact, quartiles')
    _band(ax, steps, c['transferred'], 'C0', f'transferred to {lang}')
    if c['retention'] is not None:
      _band(ax, steps, c['retention'], 'C3', f'{c["primary"]} retention')
    if c['peak_step'] is not None and c['peak_step'] != steps[-1]:
      ax.axvline(c['peak_step'], color='k', lw=0.6, ls=':')
    ax.axhline(0, color='gray', lw=0.5)
    ax.set_title(f'{lang} ({c["seeds"]} seeds, {c["facts"]} facts)', fontsize=9)
    ax.set(xlabel='continual step', ylabel='untaught - taught body loss (nats)')
    ax.legend(fontsize=6)
  return fig


def _plots(report_dir: str, study: Study) -> list[str]:
  plt = plots.pyplot()
  figures = {}
  if study.bakeoff:
    figures['mixture.png'] = _mixture_plot(plt, study.bakeoff)
    if study.bakeoff['rows']:
      figures['bakeoff.png'] = bakeoff_lib.plot(plt, study.bakeoff)
  if study.controls and study.controls['languages']:
    figures['controls.png'] = _controls_plot(plt, study.controls)
  courses = knowledge_courses(study)
  if courses:
    figures['knowledge.png'] = _knowledge_plot(plt, courses)
  if study.dynamics:
    figures.update({'stages.png': _stage_plot(plt, study), 'eq1.png': _eq1_plot(plt, study)})
  return [plots.save_figure(fig, report_dir, name, dpi=100) for name, fig in figures.items()]


def _findings(study: Study) -> list[str]:
  """The study's result in a few sentences: what the controls validate, what transferred, and
  what the mixture comparison found."""
  lines = ['## Findings', '']
  if study.controls:
    lines += [f'- {s}' for s in controls_lib.findings(study.controls)]
  check = eq1_check(study)
  if check:
    lines.append('- Eq. 1 against the measured working language (step-to-step changes, against '
                 'the scrambled control): ' + ' '.join(e['sentence'] for e in check.values()))
  courses = knowledge_courses(study)
  if courses:
    lines.append('- Planted knowledge over continual training: ' + ' '.join(
        f'{c["sentence"]} {c["separation_sentence"]}' for c in courses.values()))
  if study.bakeoff:
    lines.append('- Mixture bake-off: ' + bakeoff_lib.finding(study.bakeoff))
  return lines + ['']


def _controls_section(study: Study) -> list[str]:
  t = study.controls
  lines = ['## Controls', '',
           'Planted languages with a known answer (docs/method.md): the clone has exactly the '
           'primary language\'s structure in ids of its own, the partial clone keeps the '
           'anchors (whitespace, punctuation, digits), the scrambled language keeps only the '
           f'unigram counts. Mean [{t["confidence"]:.0%} interval] over seeds. Seed k reads its '
           'effective data transferred against reference run k mod R (R reference seeds).', '',
           '| language | kind | ' + ' | '.join(controls_lib.INSTRUMENTS) +
           ' | translation ends | stabilization starts | loss at step 0 | reference loss at '
           'step 0 |',
           '| --- | --- |' + ' --- |' * len(controls_lib.NUMBERS)]
  for lang, row in t['languages'].items():
    lines.append(f'| {lang} | {row["kind"]} | ' + ' | '.join(_controls_cells(row)) + ' |')
  lines += ['', 'Columns: ' + '; '.join(f'`{k}`: {v}' for k, v in
                                        controls_lib.INSTRUMENTS.items()) + '; ' +
            '; '.join(controls_lib.STARTS.values()) + '. A censored reading: the continual '
            'run ended below every loss its from-scratch reference reached, so D_T / D_F is '
            'only a lower bound; it is counted and left out of the intervals and tests.', '',
            f'One Welch test per instrument and pair, Holm-Bonferroni adjusted over the pair\'s '
            f'tests; an instrument separates a pair when the adjusted p is below '
            f'{controls_lib.alpha():.2g}, and is validated when it separates the clone from '
            'the scrambled language with the clone higher. No spread over seeds on both sides '
            'is no test.', '',
            '| instrument | pair | difference (first - second) | p | p (Holm) | verdict |',
            '| --- | --- | --- | --- | --- | --- |']
  for e in t['separation']:
    d = e['difference']
    diff = '–' if d is None or d['diff'] is None else (
        _fmt(d['diff'], 3) + ('' if d['low'] is None else
                              f' [{_fmt(d["low"], 3)}, {_fmt(d["high"], 3)}]'))
    verdict = e['verdict'] + ('' if 'validated' not in e else
                              ('; **validated**' if e['validated'] else
                               '; **not validated at this scale**'))
    lines.append(f'| {e["instrument"]} | {e["pair"][0]} vs {e["pair"][1]} | {diff} | '
                 f'{_p(e["p"])} | {_p(e["p_holm"])} | {verdict} |')
  return lines + ['', '![controls](controls.png)', '']


def _controls_cells(row: dict[str, Any]) -> list[str]:
  """A language's cells in NUMBERS order; censored transfer readings counted beside them."""
  cells = []
  for n in controls_lib.NUMBERS:
    iv = row['summary'][n]
    cell = _interval(iv, 3) if iv['n'] else '–'
    if iv.get('censored'):
      cell += f' ({iv["censored"]} censored, left out)'
    cells.append(cell)
  return cells


def _p(p) -> str:
  return '–' if p is None else f'{p:.3g}'


def _knowledge_section(study: Study, courses: dict[str, dict[str, Any]]) -> list[str]:
  primary = next(iter(courses.values()))['primary']
  lines = ['## Planted knowledge', '',
           f'Synthetic facts (docs/facts.md) were taught in {primary} only; each has an untaught '
           'twin of the same form that no language trains on. Knowledge transferred to L: the '
           'mean per-token loss of the twins\' bodies minus that of the taught facts\' bodies, '
           'each written in L and given its signature (nats; 0: the taught facts are no easier '
           f'than their twins). The same reading in {primary}, in the same continual runs, is '
           f'its retention. Mean [{stats.CONFIDENCE:.0%} interval] over seeds ("over facts": '
           'over the facts, each averaged over seeds); the plot adds the '
           'quartiles of the per-fact readings. A peak must lie before the last checkpoint; '
           'rise and fall are paired within a seed, each seed read at the peak of the other '
           'seeds\' mean (docs/method.md, "Planted knowledge").', '',
           '| language | kind | seeds | facts | first checkpoint | peak (step) | last checkpoint '
           f'| last, over facts | {primary} retention, first | {primary} retention, last |',
           '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
  for lang, c in courses.items():
    t, r = c['transferred'], c['retention']
    peak = '–' if c['at_peak'] is None else f'{_interval(c["at_peak"], 3)} ({c["peak_step"]})'
    seeds = f'{c["seeds"]}' + (f' ({c["seeds_without"]} without a reading)'
                               if c['seeds_without'] else '')
    lines.append(f'| {lang} | {c["kind"]} | {seeds} | {c["facts"]} | {_interval(t[0], 3)} | '
                 f'{peak} | {_interval(t[-1], 3)} | {_interval(c["last_over_facts"], 3)} | '
                 + (f'{_interval(r[0], 3)} | {_interval(r[-1], 3)} |' if r else '– | – |'))
  lines.append('')
  for c in courses.values():
    lines += [f'- {c["sentence"]}', f'- {c["separation_sentence"]}']
  return lines + ['', '![knowledge](knowledge.png)', '']


def _stages_section(study: Study) -> list[str]:
  lines = ['## Stages per new language', '',
           '| language | seed | performance curve | translation ends | stabilization starts | '
           'working-language crossover | transferring neurons peak |',
           '| --- | --- | --- | --- | --- | --- | --- |']
  for lang, seeds in study.dynamics.items():
    for k, (curves, a) in enumerate(seeds):
      p = curves.performance
      lines.append(f'| {lang} | [{k}]({study.run_reports[lang][k]}) | {p.name} ({p.why}) | '
                   f'{a.stages.translation_end} | {a.stages.stabilization_start} | '
                   f'{a.crossover_step} (in Transition: {a.crossover_agrees}) | '
                   f'{a.transferring_peak_step} (in Transition: {a.transferring_agrees}) |')
  return lines + ['', '![stages](stages.png)', '']


def _eq1_section(study: Study) -> list[str]:
  lines = ['## Eq. 1 against the measured working language', '',
           'P(l) = (alpha - l) / (alpha - beta) on the held-out loss of the new language; '
           'measured: the logit lens\'s Python probability-mass share, averaged over layers. '
           'The same fit gives P* to Algorithm 1 below. Both curves fall with training time, so '
           'their levels correlate for any run, the scrambled control included; the check is '
           'the correlation of their step-to-step changes (first differences), and it supports '
           'Eq. 1 on a language only where it exceeds the scrambled control\'s (Welch, '
           f'p < {controls_lib.alpha():.2g}).', '',
           '| language | seed | beta | alpha | rule | P* (step) | r of changes | r of levels |',
           '| --- | --- | --- | --- | --- | --- | --- | --- |']
  for lang, seeds in study.dynamics.items():
    for k, (_, a) in enumerate(seeds):
      e = a.eq1
      p = f'{e.p_star:.3f} ({e.best_step})' if e.p_star is not None else f'– ({e.problem})'
      lines.append(f'| {lang} | {k} | {_fmt(e.beta)} | {_fmt(e.alpha)} | {e.rule} | {p} | '
                   f'{_fmt(a.eq1_vs_lens, 3)} | {_fmt(a.eq1_vs_lens_levels, 3)} |')
  lines.append('')
  lines += [f'- {e["sentence"]}' for e in eq1_check(study).values()]
  return lines + ['', '![eq1](eq1.png)', '']


def _mixture_section(study: Study) -> list[str]:
  """Algorithm 1's mixture beside the original one, language by language, and why."""
  bake = study.bakeoff
  if not bake or 'babel' not in bake['provenance']:
    return []
  opt, original = bake['provenance']['babel'], bake['original']
  lines = ['## The Babel Tower mixture', '',
           f'Algorithm 1 with a {study.languages[0]} budget of {opt["primary_tokens"]:.4g} '
           'tokens; P* needs more than half of the seeds to give one, and is the mean over those. '
           f'Languages without P* keep their share in the original ({original}) mixture.',
           '', f'| language | {original} share | babel share | babel tokens | P* (seeds) | '
           'best steps | note |', '| --- | --- | --- | --- | --- | --- | --- |']
  for lang in study.languages:
    fit = opt['fits'].get(lang, {})
    note = opt['kept_original'].get(lang, '')
    if lang in opt.get('capped', {}):
      note = f'capped at the {opt["capped"][lang]["available"]:.4g} tokens available'
    steps = ', '.join(str(f['best_step']) for f in fit.get('seeds', []) if f['p_star'])
    given = (f' ({fit["seeds_with_p_star"]} of {fit["seed_count"]})'
             if 'seed_count' in fit else '')
    base = bake['weights'].get(original, {}).get(lang)
    lines.append(f'| {lang} | {_fmt(base, 3)} | {bake["weights"]["babel"][lang]:.3f} | '
                 f'{opt["target_tokens"][lang]:.4g} | {_fmt(fit.get("p_star"), 3)}{given} | '
                 f'{steps or "–"} | {note} |')
  same = [n for n, others in bake['identical'].items() if 'babel' in [n, *others]]
  if same and len([same[0], *bake['identical'][same[0]]]) > 1:
    lines += ['', f'**Algorithm 1\'s mixture equals {same[0] if same[0] != "babel" else "another"}'
              '\'s** (no new language gave P* or every one was capped): its from-scratch runs '
              'would repeat those step for step, so they ran once (the bake-off below).']
  return lines + ['', '![mixture](mixture.png)', '']


def write(report_dir: str, study: Study) -> str:
  """Writes report_dir/index.md, its plots and eq1.json; returns the page's path."""
  os.makedirs(report_dir, exist_ok=True)
  made = _plots(report_dir, study)
  scalars = {}
  if study.controls:
    scalars.update({
        f'effective_transfer/{lang}/seed{k}': (r['effective_transfer']['fine_tuning_tokens'],
                                               r['effective_transfer']['fraction'])
        for lang, row in study.controls['languages'].items()
        for k, r in enumerate(row['seeds']) if 'effective_transfer' in r})
  if study.bakeoff:  # the bake-off's final metrics, one point per seed (x = seed index)
    scalars.update({
        f'bakeoff/{r["metric"]}/{r["language"]}/{name}': (range(iv['n']), iv['values'])
        for r in study.bakeoff['rows'] for name, iv in r['strategies'].items()})
  if scalars:
    plots.scalars(os.path.join(report_dir, 'tb'), scalars)
  io.write_json(os.path.join(report_dir, 'eq1.json'), eq1_table(study), indent=1)
  courses = knowledge_courses(study)
  if courses:
    io.write_json(os.path.join(report_dir, 'knowledge.json'), courses, indent=1)
  lines = ['# Babel Tower study', '',
           f'Primary language **{study.languages[0]}**; new languages '
           f'**{", ".join(study.dynamics)}**; {study.seeds} seeds per run. Config: '
           '`../config.json`; method: docs/method.md. Phases (seconds): '
           + ', '.join(f'{p["name"]} {p["seconds"]:.0f}' for p in study.phases) + '.', '']
  sections = [_findings(study)]
  if study.controls and study.controls['languages']:
    sections.append(_controls_section(study))
  if courses:
    sections.append(_knowledge_section(study, courses))
  sections += [_stages_section(study), _eq1_section(study), _mixture_section(study)]
  if study.bakeoff:
    sections.append(bakeoff_lib.section(study.bakeoff, 'bakeoff.png' if 'bakeoff.png' in made
                                        else None))
  for section in sections:
    lines += section
  lines += ['Numbers: `../controls.json`, `../dynamics.json`, `../mixtures.json` (every '
            'strategy, both scales), `../mixture/<strategy>.json`, `../comparison.json`, '
            '`eq1.json`'
            + (', `knowledge.json`' if courses else '') + '.', '']
  path = os.path.join(report_dir, 'index.md')
  io.atomic_write(path, '\n'.join(lines))
  return path
