"""The report of one run: every probe metric as CSV/JSON, plots, and a Markdown page.

<run>/report/: probes.csv (one row per checkpoint), summary.json (the curves and their analysis:
stages, Eq. 1, crossover, transferring-neuron peak, |P∩C|/|C| where evaluation results exist),
lens_<lang>.png (layer x step heatmap of the working language's primary share: the probe-set lens
of a real language, the aligned lens's within-block share of a planted one), neurons.png,
loss.png (held-out loss with stage bands), knowledge.png (planted knowledge transferred to L
beside the primary's retention, where the probes read it), index.md, and tb/ (Eq. 1's share, the
performance curve and the planted knowledge as TensorBoard scalars).
"""

from __future__ import annotations

import csv
import io as stdio
import os
from typing import Any

import numpy as np

from babel_jax import io
from babel_jax.dynamics import analysis as analysis_lib
from babel_jax.dynamics import curves as curves_lib
from babel_jax.dynamics import plots
from babel_jax.probes import result as result_lib
from babel_jax.probes.result import AlignedReading, LensReading, ProbeResult
from babel_jax.runtime.rundir import RunDir


def _working(r: ProbeResult) -> dict[str, tuple[str, LensReading | AlignedReading]]:
  """Per language with a working-language reading at this step: ('lens', probe-set reading) or
  ('aligned', aligned-lens reading)."""
  return {**{lang: ('lens', x) for lang, x in r.lens.items()},
          **{lang: ('aligned', x) for lang, x in r.aligned_lens.items()}}


def _rows(results: list[ProbeResult], languages, eq1_share) -> list[dict[str, Any]]:
  rows = []
  for i, r in enumerate(results):
    row = {'step': r.step}
    working = _working(r)
    for lang in languages:
      row[f'loss/{lang}'] = r.loss.get(lang)
      row[f'specific/{lang}'] = (r.neurons.specific[lang].total
                                 if lang in r.neurons.specific else None)
      if lang in r.neurons.transferring:
        row[f'transferring/{lang}'] = r.neurons.transferring_total(lang)
      if lang in r.knowledge:
        row[f'knowledge/{lang}'] = r.knowledge[lang].transferred
      if lang in working:
        kind, x = working[lang]
        row[f'{kind}_primary_share/{lang}'] = float(np.mean(x.primary_share))
        if kind == 'lens':
          row[f'lens_primary_top1/{lang}'] = float(np.mean(x.primary_top1))
          row[f'lens_target_top1/{lang}'] = float(np.mean(x.target_top1))
        else:
          row[f'aligned_primary_block/{lang}'] = float(np.mean(x.primary_block_share))
    row['system_share_eq1'] = float(eq1_share[i])
    rows.append(row)
  return rows


def _csv(rows: list[dict[str, Any]]) -> str:
  table = stdio.StringIO()
  writer = csv.DictWriter(table, list(dict.fromkeys(k for row in rows for k in row)))
  writer.writeheader()
  writer.writerows(rows)
  return table.getvalue()


def _plots(report_dir: str, results, curves: curves_lib.Curves, stages) -> list[str]:
  plt = plots.pyplot()
  made = []
  for lang in sorted({lang for r in results for lang in _working(r)}):
    rows = [r for r in results if lang in _working(r)]
    kind = _working(rows[0])[lang][0]
    grid = np.stack([_working(r)[lang][1].primary_share for r in rows], axis=1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    im = ax.imshow(grid, aspect='auto', origin='lower', cmap='coolwarm', vmin=0, vmax=1)
    ax.set_xticks(range(len(rows)), [str(r.step) for r in rows], rotation=60, fontsize=7)
    ax.set_yticks(range(grid.shape[0]))
    what = 'prompts' if kind == 'lens' else 'held-out text\n(aligned lens, q: within id blocks)'
    ax.set(xlabel='checkpoint step', ylabel='layer',
           title=f'{lang} {what}: working language per layer')
    p = 'p' if kind == 'lens' else 'q'
    fig.colorbar(im, ax=ax, label=f'{p}({curves.primary}) / ({p}({curves.primary}) + '
                                  f'{p}({lang}))')
    made.append(plots.save_figure(fig, report_dir, f'lens_{lang}.png'))
  steps = curves.steps
  k = curves.knowledge
  if k is not None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plots.stage_bands(ax, stages)
    for values_CxJ, colour, label in ((k.transferred_CxJ, 'C0', f'transferred to {k.language}'),
                                      (k.retention_CxJ, 'C3', f'{k.primary} retention')):
      if values_CxJ is None:
        continue
      lo, hi = np.percentile(values_CxJ, [25, 75], axis=1)
      ax.fill_between(steps, lo, hi, color=colour, alpha=0.15, lw=0)
      ax.plot(steps, values_CxJ.mean(axis=1), '-o', ms=3, color=colour,
              label=f'{label} (band: per-fact quartiles)')
    ax.axhline(0, color='gray', lw=0.5)
    ax.set(xlabel='checkpoint step', ylabel='untaught - taught body loss (nats)',
           title=f'planted knowledge ({len(k.names)} facts)')
    ax.legend(fontsize=7)
    made.append(plots.save_figure(fig, report_dir, 'knowledge.png'))
  for name, ylabel, series in (
      ('neurons.png', 'transferring neurons',
       {lang: [r.neurons.transferring[lang].total if lang in r.neurons.transferring else None
               for r in results] for lang in curves.languages}),
      ('loss.png', 'held-out loss', curves.heldout_loss)):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plots.stage_bands(ax, stages)
    for lang, vals in series.items():
      if any(v is not None for v in vals):
        ax.plot(steps, [np.nan if v is None else v for v in vals], marker='.', label=lang)
    ax.set(xlabel='checkpoint step', ylabel=ylabel)
    ax.legend(fontsize=7)
    made.append(plots.save_figure(fig, report_dir, name))
  return made


def write(run: RunDir | str, settings: analysis_lib.Settings) -> dict[str, Any]:
  """Writes <run>/report from probes/*.json (and eval/ where present); returns the summary."""
  run = RunDir(run) if isinstance(run, str) else run
  curves = curves_lib.load(run, settings.language, settings.performance)
  analysis = analysis_lib.analyze(curves, settings)
  summary = analysis_lib.summary(curves, analysis)
  results = result_lib.load_all(run)
  os.makedirs(run.report_dir, exist_ok=True)
  io.atomic_write(os.path.join(run.report_dir, 'probes.csv'),
                  _csv(_rows(results, curves.languages, analysis.eq1.share)))
  io.write_json(os.path.join(run.report_dir, 'summary.json'), summary)
  made = _plots(run.report_dir, results, curves, analysis.stages)
  scalars = {'dynamics/eq1_share': (curves.steps, analysis.eq1.share),
             'dynamics/performance': (curves.steps, curves.performance.values),
             'dynamics/performance_smoothed': (curves.steps, analysis.stages.smoothed)}
  if curves.knowledge is not None:
    scalars['dynamics/knowledge_transferred'] = (curves.steps, curves.knowledge.transferred_C)
    if curves.knowledge.retention_C is not None:
      scalars['dynamics/knowledge_retention'] = (curves.steps, curves.knowledge.retention_C)
  plots.scalars(run.report_tb_dir, scalars)
  io.atomic_write(os.path.join(run.report_dir, 'index.md'), _page(summary, made))
  return summary


def _page(summary: dict[str, Any], plots_made: list[str]) -> str:
  st, eq1 = summary['stages'], summary['eq1']
  lines = ['# Probe report', '',
           f'Checkpoints: {len(summary["steps"])} ({summary["steps"][:1]} ... '
           f'{summary["steps"][-1:]}); primary language {summary["primary"]}, new language '
           f'{summary["target"]}. Method: docs/method.md.', '',
           '## Stages', '', f'Performance curve: {summary["performance"]["curve"]} '
           f'({summary["performance"]["why"]}).', '',
           '| stage | from step | to step |', '| --- | --- | --- |']
  lines += [f'| {s["name"]} | {s["start"]} | {s["end"]} |' for s in st['stages']]
  if st['reason']:
    lines += ['', f'No stages: {st["reason"]}.']
  p_star = eq1['p_star']
  lines += ['', f'- working-language crossover: step {summary["crossover_step"]} '
            f'(in Transition: {summary["crossover_agrees"]})',
            f'- transferring neurons peak: step {summary["transferring_peak_step"]} '
            f'(in Transition: {summary["transferring_agrees"]})',
            f'- Eq. 1: beta {eq1["beta"]:.4f}, alpha {eq1["alpha"]:.4f} ({eq1["rule"]}); '
            + (f'P* = {p_star:.3f} at step {eq1["best_step"]}' if p_star is not None
               else f'no P*: {eq1["problem"]}'),
            f'- Eq. 1 share vs the logit lens\'s primary share: correlation of their '
            f'step-to-step changes {summary["eq1_vs_lens"]} (of their levels '
            f'{summary.get("eq1_vs_lens_levels")}; both curves move with training time, so the '
            'study report judges the changes against the scrambled control)']
  k = summary.get('knowledge')
  if k:
    retention = k['retention']
    lines.append(
        f'- planted knowledge ({k["facts"]} facts, untaught minus taught body loss): transferred '
        f'to {summary["target"]} {k["transferred"][0]:+.3f} at the first checkpoint, '
        f'{k["transferred"][-1]:+.3f} at the last, '
        + (f'peak {k["peak"]:+.3f} at step {k["peak_step"]}' if k['peak_step'] is not None else
           'no peak before the last checkpoint')
        + ('' if retention is None else
           f'; {summary["primary"]} retention {retention[0]:+.3f} -> {retention[-1]:+.3f}')
        + ' (one run: the study report reads the rise and fall over seeds)')
  lines.append('')
  lines += [f'![{p}]({p})' for p in plots_made]
  lines += ['', 'All numbers: `probes.csv`, `summary.json`; raw per-checkpoint results: '
            '`../probes/<step>.json`.', '']
  return '\n'.join(lines)
