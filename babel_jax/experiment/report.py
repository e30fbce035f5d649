"""The study's report: one Markdown page with plots, readable at a glance.

<workdir>/report/index.md: the stages per new language, Eq. 1 fitted on the loss against the
measured working-language share, the mixture chosen (and why), and the comparison of the
from-scratch runs; plots stages.png, eq1.png, mixture.png, comparison.png next to it. Every
number also lives in dynamics.json, mixture/*.json and comparison.json.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax.experiment import runs
from babel_jax.probes import report as probe_report
from babel_jax.probes import stages as stages_lib

REPORT_DIR = 'report'


def _load(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def eq1_curves(curves: dict[str, Any], fits: dict[str, Any], tail: int) -> dict[str, Any]:
  """Per language: Eq. 1's P(l) at every checkpoint, the measured Python share (logit lens,
  probability mass averaged over layers) and their correlation."""
  out = {}
  for lang, c in curves.items():
    loss = np.asarray(c['loss'], np.float64)
    fit = fits.get(lang) or {'beta': float(loss[0]), 'alpha': float(loss[-tail:].mean())}
    denom = fit['alpha'] - fit['beta']
    share = ((fit['alpha'] - loss) / denom).tolist() if denom else [float('nan')] * len(loss)
    measured = c['summary'].get('lens', {}).get('python_mass_share')
    out[lang] = {'alpha': fit['alpha'], 'beta': fit['beta'], 'fitted': lang in fits,
                 'eq1_share': share, 'measured_share': measured,
                 'correlation': stages_lib.correlation(share, measured) if measured else None}
  return out


def _plots(report_dir: str, curves, eq1, mixtures, rows, languages) -> list[str]:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  made = []

  def save(fig, name):
    made.append(probe_report.save_figure(fig, report_dir, name, dpi=100))

  langs = list(curves)
  if langs:
    fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
    for ax, lang in zip(axes[0], langs):
      c = curves[lang]
      st = c['summary'].get('stages', {})
      for band in st.get('stages', []):
        ax.axvspan(band['start'], band['end'], color=probe_report.STAGE_COLOURS[band['name']], alpha=0.7,
                   label=band['name'])
      ax.plot(c['steps'], c['performance'], 'o', ms=3, color='gray', label='measured')
      ax.plot(c['steps'], st.get('smoothed', c['performance']), '-', color='k', label='smoothed')
      ax.set_title(f'{lang}: {c["performance_source"]}', fontsize=9)
      ax.set_xlabel('continual step')
      ax.legend(fontsize=6)
    save(fig, 'stages.png')
    fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.2), squeeze=False)
    for ax, lang in zip(axes[0], langs):
      e, steps = eq1[lang], curves[lang]['steps']
      ax.plot(steps, e['eq1_share'], '-o', ms=3, label='Eq. 1 from the loss')
      if e['measured_share']:
        ax.plot(steps, e['measured_share'], '-s', ms=3, label='logit lens (Python mass)')
      corr = e['correlation']
      ax.set_title(f'{lang}: r = {corr:.2f}' if corr is not None else f'{lang}: r n/a',
                   fontsize=9)
      ax.set_ylim(-0.2, 1.2)
      ax.set_xlabel('continual step')
      ax.set_ylabel('Python system share')
      ax.legend(fontsize=6)
    save(fig, 'eq1.png')
  fig, ax = plt.subplots(figsize=(5.5, 3.2))
  x = np.arange(len(languages))
  for i, name in enumerate(runs.MIXTURES):
    ax.bar(x + (i - 0.5) * 0.4, [mixtures[name]['weights'][lang] for lang in languages], 0.4,
           label=name)
  ax.set_xticks(x, languages)
  ax.set_ylabel('token share')
  ax.legend(fontsize=7)
  save(fig, 'mixture.png')
  metrics = sorted({r['metric'] for r in rows})
  if metrics:
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
      sel = [r for r in rows if r['metric'] == metric]
      x = np.arange(len(sel))
      for i, name in enumerate(runs.MIXTURES):
        means = [r[name]['mean'] for r in sel]
        err = [0 if r[name]['low'] is None else r[name]['mean'] - r[name]['low'] for r in sel]
        ax.bar(x + (i - 0.5) * 0.4, means, 0.4, yerr=err, capsize=3, label=name)
      ax.set_xticks(x, [r['language'] for r in sel])
      ax.set_ylabel(metric + (' (lower is better)' if sel[0]['lower_is_better'] else ''))
      ax.legend(fontsize=7)
    save(fig, 'comparison.png')
  return made


def _fmt(x, digits=4) -> str:
  return '–' if x is None else f'{x:.{digits}f}'


def _interval(iv, digits=4) -> str:
  if iv['low'] is None:
    return f'{_fmt(iv["mean"], digits)} (n={iv["n"]})'
  return f'{_fmt(iv["mean"], digits)} [{_fmt(iv["low"], digits)}, {_fmt(iv["high"], digits)}]'


def _page(cfg, workdir, curves, eq1, mixtures, comparison, phases, plots) -> str:
  opt = mixtures['optimized']['provenance']
  languages = list(config_lib.languages(cfg))
  lines = ['# Babel Tower study', '',
           f'Primary language **{languages[0]}**; new languages '
           f'**{", ".join(curves)}**; {cfg.experiment.seeds} seeds per mixture. '
           f'Config: `config.json`. Phases (seconds): '
           + ', '.join(f'{p["name"]} {p["seconds"]:.0f}' for p in phases) + '.', '']
  lines += ['## Stages per new language', '',
            '| language | performance curve | translation ends | stabilization starts | '
            'working-language crossover | transferring neurons peak |',
            '| --- | --- | --- | --- | --- | --- |']
  for lang, c in curves.items():
    s = c['summary']
    st = s.get('stages', {})
    lines.append(f'| {lang} | {c["performance_curve"]} ({c["performance_why"]}) | '
                 f'{st.get("translation_end")} | {st.get("stabilization_start")} | '
                 f'{s.get("crossover_step")} (in Transition: {s.get("crossover_agrees")}) | '
                 f'{s.get("transferring_peak_step")} (in Transition: '
                 f'{s.get("transferring_agrees")}) |')
  lines += ['', '![stages](stages.png)', '', 'Per-run probe reports: '
            + ', '.join(f'[{lang}](../continual/{lang}/report/index.md)' for lang in curves), '']
  lines += ['## Eq. 1 against the measured working language', '',
            'P(l) = (alpha - l) / (alpha - beta) on the held-out loss of the new language, '
            f'beta its first checkpoint, alpha the mean of its last {cfg.experiment.fit_tail}; '
            'measured: the logit lens\'s Python probability mass share, averaged over layers.', '',
            '| language | beta | alpha | correlation with the measured share |',
            '| --- | --- | --- | --- |']
  for lang, e in eq1.items():
    lines.append(f'| {lang} | {_fmt(e["beta"])} | {_fmt(e["alpha"])} | '
                 f'{_fmt(e["correlation"], 3)} |')
  lines += ['', '![eq1](eq1.png)', '', '## The mixture chosen', '',
            f'Original: {mixtures["original"]["provenance"].get("strategy")}. Optimized: '
            f'Algorithm 1 with a {languages[0]} budget of {opt["python_tokens"]:.4g} tokens.', '',
            '| language | original share | optimized share | optimized tokens | P* | best step '
            '| note |', '| --- | --- | --- | --- | --- | --- | --- |']
  for lang in languages:
    fit = opt['fits'].get(lang, {})
    note = opt['kept_original'].get(lang, '')
    if lang in opt.get('capped', {}):
      note = f'capped at the {opt["capped"][lang]["available"]:.4g} tokens available'
    lines.append(f'| {lang} | {mixtures["original"]["weights"][lang]:.3f} | '
                 f'{mixtures["optimized"]["weights"][lang]:.3f} | '
                 f'{opt["target_tokens"][lang]:.4g} | {_fmt(fit.get("p_star"), 3)} | '
                 f'{fit.get("best_step", "–")} | {note} |')
  if runs.same_weights(mixtures['original']['weights'], mixtures['optimized']['weights']):
    lines += ['', '**The optimized mixture equals the original** (every new language was capped '
              'at the tokens available or kept its original share): its from-scratch runs would '
              'repeat the original ones step for step, so the original runs stand for both and '
              'the comparison below is even by construction.']
  lines += ['', '![mixture](mixture.png)', '', '## From-scratch comparison', '',
            f'Final checkpoints of {cfg.experiment.seeds} seeds per mixture, '
            f'{runs.steps(cfg, "scratch")} steps each (equal compute). Mean '
            f'[{comparison["confidence"]:.0%} interval]; the winner is the mixture whose '
            'advantage\'s Welch interval excludes zero.', '',
            '| language | metric | original | optimized | optimized - original | winner |',
            '| --- | --- | --- | --- | --- | --- |']
  for r in comparison['rows']:
    d = r['difference']
    diff = _fmt(d['diff']) + ('' if d['low'] is None else
                              f' [{_fmt(d["low"])}, {_fmt(d["high"])}]')
    lines.append(f'| {r["language"]} | {r["metric"]} | {_interval(r["original"])} | '
                 f'{_interval(r["optimized"])} | {diff} | **{r["winner"]}** |')
  if 'comparison.png' in plots:
    lines += ['', '![comparison](comparison.png)']
  lines += ['', 'Numbers: `../dynamics.json`, `../mixture/original.json`, '
            '`../mixture/optimized.json`, `../comparison.json`.', '']
  return '\n'.join(lines)


def write(cfg, workdir: str) -> str:
  """Writes <workdir>/report/index.md and its plots; returns the page's path."""
  curves = _load(os.path.join(workdir, 'dynamics.json'))
  comparison = _load(os.path.join(workdir, 'comparison.json'))
  mixtures = {m: _load(runs.mixture_path(workdir, m)) for m in runs.MIXTURES}
  phase_dir = os.path.join(workdir, 'phases')
  phases = sorted((_load(os.path.join(phase_dir, n)) for n in os.listdir(phase_dir)),
                  key=lambda p: p['phase'])
  eq1 = eq1_curves(curves, mixtures['optimized']['provenance']['fits'], cfg.experiment.fit_tail)
  report_dir = os.path.join(workdir, REPORT_DIR)
  os.makedirs(report_dir, exist_ok=True)
  languages = list(config_lib.languages(cfg))
  plots = _plots(report_dir, curves, eq1, mixtures, comparison['rows'], languages)
  path = os.path.join(report_dir, 'index.md')
  config_lib.atomic_write(os.path.join(report_dir, 'eq1.json'), json.dumps(eq1, indent=1))
  config_lib.atomic_write(path, _page(cfg, workdir, curves, eq1, mixtures, comparison, phases,
                                      plots))
  return path
