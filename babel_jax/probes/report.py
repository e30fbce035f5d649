"""The report folder of a run: every probe metric as CSV/JSON, plots, and a Markdown page.

<workdir>/report/: probes.csv (one row per checkpoint), summary.json (stages, crossover,
transferring-neuron peak, Eq. 1 system share and its correlation with the measured share,
|P∩C|/|C| where evaluation results exist), lens_<lang>.png (layer x step heatmap of the Python
share of the working language), neurons.png, loss.png (held-out loss with stage bands), index.md.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax.data import mixture_spec
from babel_jax.probes import stages as stages_lib
from babel_jax.probes import stream
from babel_jax.train import metrics as metrics_lib

REPORT_DIR = 'report'


def target_language(cfg) -> str | None:
  """probe.target_language, else the non-primary language with the largest mixture weight."""
  langs = config_lib.languages(cfg)
  if cfg.probe.target_language:
    if cfg.probe.target_language not in langs:
      raise config_lib.ConfigError(f'probe.target_language={cfg.probe.target_language!r} is not '
                                   f'in data.languages {list(langs)}')
    return cfg.probe.target_language
  if len(langs) < 2:
    return None
  weights = mixture_spec.from_config(cfg).weights
  return max(langs[1:], key=lambda lang: (weights[lang], -langs.index(lang)))


def python_mass_share(lens: dict[str, Any]) -> np.ndarray:
  """Per layer: p(Python id) / (p(Python id) + p(L id)), the probability-mass working language."""
  py, tg = np.asarray(lens['python_prob']), np.asarray(lens['target_prob'])
  return py / np.maximum(py + tg, 1e-30)


def _eval_solved(workdir: str, step: int, lang: str) -> set[str] | None:
  path = os.path.join(workdir, 'eval', str(step), 'per_problem.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    per_problem = json.load(f).get(lang, {})
  return {task for task, ok in per_problem.items() if ok}


def performance_curve(choice: str, results: list[dict[str, Any]], solved: list[set[str] | None],
                      target: str) -> dict[str, Any]:
  """The new language's performance per checkpoint (higher is better), as probe.performance says.

  'eval': HumanEval problems solved in L; 'lens': the final layer's probability of L's identifier
  on the probe set (the model completing L's built-ins); 'loss': negative held-out loss of L.
  'auto' takes the first that every checkpoint has and that is not flat, and says why.
  """
  candidates = {}
  if solved and all(x is not None for x in solved):
    candidates['eval'] = (f'HumanEval problems solved in {target}', [len(x) for x in solved])
  if results and all(target in r.get('lens', {}) for r in results):
    candidates['lens'] = (f'final-layer probability of the {target} identifier (logit lens)',
                          [float(r['lens'][target]['target_prob'][-1]) for r in results])
  candidates['loss'] = (f'negative held-out loss of {target}',
                        [-float(r['loss'][target]) for r in results])
  if choice != 'auto':
    if choice not in candidates:
      raise config_lib.ConfigError(
          f'probe.performance={choice!r} but the checkpoints of {target} have no such results '
          f'(have: {sorted(candidates)}); run the evaluation / use a corpus with probe prompts')
    name, values = candidates[choice]
    return {'source': choice, 'curve': name, 'values': values, 'why': 'probe.performance'}
  skipped = []
  for key in ('eval', 'lens', 'loss'):
    if key not in candidates:
      skipped.append(f'{key}: no results')
      continue
    name, values = candidates[key]
    if key != 'loss' and np.ptp(values) == 0:
      skipped.append(f'{key}: flat at {values[0]:g}')
      continue
    return {'source': key, 'curve': name, 'values': values,
            'why': 'auto' + (f' (skipped {"; ".join(skipped)})' if skipped else '')}
  raise AssertionError('unreachable: the loss curve always exists')


def summarise(cfg, workdir: str, results: list[dict[str, Any]]) -> dict[str, Any]:
  """Curves per checkpoint and everything derived from them."""
  target = target_language(cfg)
  primary = config_lib.languages(cfg)[0]
  steps = [r['step'] for r in results]
  out: dict[str, Any] = {'steps': steps, 'primary': primary, 'target': target,
                         'smooth_window': cfg.probe.smooth_window,
                         'slope_tolerance': cfg.probe.slope_tolerance}
  if target is None or not results:
    return out
  w, tol = cfg.probe.smooth_window, cfg.probe.slope_tolerance
  loss = [r['loss'][target] for r in results]
  solved = [_eval_solved(workdir, s, target) for s in steps]
  out['performance'] = performance_curve(cfg.probe.performance, results, solved, target)
  perf = out['performance']['values']
  have_eval = all(x is not None for x in solved) and len(steps) >= 3
  bounds = stages_lib.detect(steps, perf, w, tol)
  out['stages'] = bounds
  transfer = [r['neurons']['transferring'].get(target, {}).get('total', 0) for r in results]
  out['transferring_neurons'] = transfer
  out['transferring_peak_step'] = stages_lib.peak_step(steps, transfer, w)
  out['transferring_agrees'] = stages_lib.agrees(out['transferring_peak_step'], bounds)
  eq1 = stages_lib.system_share(loss, bounds['stabilization_start'], steps, w)
  out['system_share_eq1'] = eq1
  if all('lens' in r and target in r['lens'] for r in results):
    lens = [r['lens'][target] for r in results]
    py_top1 = [float(np.mean(x['python_top1'])) for x in lens]
    tg_top1 = [float(np.mean(x['target_top1'])) for x in lens]
    mass = [float(np.mean(python_mass_share(x))) for x in lens]
    out['lens'] = {'python_top1': py_top1, 'target_top1': tg_top1, 'python_mass_share': mass}
    out['crossover_step'] = stages_lib.crossover(steps, mass, [1 - m for m in mass], w)
    out['crossover_agrees'] = stages_lib.agrees(out['crossover_step'], bounds)
    out['eq1_vs_measured_correlation'] = stages_lib.correlation(eq1['share'], mass)
  if have_eval and cfg.probe.python_specific:
    with open(cfg.probe.python_specific) as f:
      specific = set(json.load(f))
    out['knowledge_transfer'] = [stages_lib.knowledge_transfer(specific, x) for x in solved]
  return out


STAGE_COLOURS = {'translation': '#cfe8ff', 'transition': '#ffe2c4', 'stabilization': '#d9f2d9'}


def save_figure(fig, report_dir: str, name: str, dpi: int = 110) -> str:
  """Saves a matplotlib figure as report_dir/name via a temporary file; returns name."""
  import matplotlib.pyplot as plt
  fig.tight_layout()
  tmp = os.path.join(report_dir, f'.{name}.tmp.png')
  fig.savefig(tmp, dpi=dpi)
  plt.close(fig)
  os.replace(tmp, os.path.join(report_dir, name))
  return name


def _plots(report_dir: str, results, summary, languages) -> list[str]:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  made = []
  steps = summary['steps']

  def save(fig, name):
    made.append(save_figure(fig, report_dir, name))

  def bands(ax):
    for st in summary.get('stages', {}).get('stages', []):
      ax.axvspan(st['start'], st['end'], color=STAGE_COLOURS[st['name']], alpha=0.6,
                 label=st['name'])

  lens_langs = sorted({lang for r in results for lang in r.get('lens', {})})
  for lang in lens_langs:
    rows = [r for r in results if lang in r.get('lens', {})]
    grid = np.stack([python_mass_share(r['lens'][lang]) for r in rows], axis=1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    im = ax.imshow(grid, aspect='auto', origin='lower', cmap='coolwarm', vmin=0, vmax=1)
    ax.set_xticks(range(len(rows)), [str(r['step']) for r in rows], rotation=60, fontsize=7)
    ax.set_yticks(range(grid.shape[0]))
    ax.set_xlabel('checkpoint step')
    ax.set_ylabel('layer')
    ax.set_title(f'{lang} prompts: working language per layer')
    fig.colorbar(im, ax=ax, label=f'p(Python) / (p(Python) + p({lang}))')
    save(fig, f'lens_{lang}.png')
  fig, ax = plt.subplots(figsize=(7, 3.5))
  bands(ax)
  for lang in languages:
    vals = [r['neurons']['transferring'].get(lang, {}).get('total') for r in results]
    if any(v is not None for v in vals):
      ax.plot(steps, [v or 0 for v in vals], marker='o', label=lang)
  ax.set_xlabel('checkpoint step')
  ax.set_ylabel('transferring neurons')
  ax.legend(fontsize=7)
  save(fig, 'neurons.png')
  fig, ax = plt.subplots(figsize=(7, 3.5))
  bands(ax)
  for lang in languages:
    ax.plot(steps, [r['loss'][lang] for r in results], marker='.', label=lang)
  ax.set_xlabel('checkpoint step')
  ax.set_ylabel('held-out loss')
  ax.legend(fontsize=7)
  save(fig, 'loss.png')
  return made


def write(cfg, workdir: str) -> dict[str, Any]:
  """Writes <workdir>/report from probes/*.json; returns the summary."""
  results = stream.load_results(workdir)
  if not results:
    raise config_lib.ConfigError(f'no probe results in {workdir}/probes; run --mode probe first')
  languages = list(config_lib.languages(cfg))
  report_dir = os.path.join(workdir, REPORT_DIR)
  os.makedirs(report_dir, exist_ok=True)
  summary = summarise(cfg, workdir, results)
  rows = []
  for i, r in enumerate(results):
    row = {'step': r['step']}
    for lang in languages:
      row[f'loss/{lang}'] = r['loss'].get(lang)
      row[f'specific/{lang}'] = r['neurons']['specific'].get(lang, {}).get('total')
      if lang in r['neurons']['transferring']:
        row[f'transferring/{lang}'] = r['neurons']['transferring'][lang]['total']
      if lang in r.get('lens', {}):
        row[f'lens_python_top1/{lang}'] = float(np.mean(r['lens'][lang]['python_top1']))
        row[f'lens_target_top1/{lang}'] = float(np.mean(r['lens'][lang]['target_top1']))
        row[f'lens_python_mass/{lang}'] = float(np.mean(python_mass_share(r['lens'][lang])))
    if 'system_share_eq1' in summary:
      row['system_share_eq1'] = summary['system_share_eq1']['share'][i]
    rows.append(row)
  fields = list(dict.fromkeys(k for row in rows for k in row))
  table = io.StringIO()
  writer = csv.DictWriter(table, fields)
  writer.writeheader()
  writer.writerows(rows)
  config_lib.atomic_write(os.path.join(report_dir, 'probes.csv'), table.getvalue())
  config_lib.atomic_write(os.path.join(report_dir, 'summary.json'),
                          json.dumps(summary, indent=2, default=float))
  plots = _plots(report_dir, results, summary, languages)
  config_lib.atomic_write(os.path.join(report_dir, 'index.md'), _page(summary, plots))
  metrics_lib.log(f'report: {report_dir}/index.md ({len(results)} checkpoints)')
  return summary


def _page(summary: dict[str, Any], plots: list[str]) -> str:
  lines = ['# Probe report', '',
           f'Checkpoints: {len(summary["steps"])} ({summary["steps"][:1]} ... '
           f'{summary["steps"][-1:]}); primary language {summary["primary"]}, new language '
           f'{summary["target"]}.', '']
  if 'stages' in summary:
    st = summary['stages']
    lines += ['## Stages', '', f'Performance curve: {summary["performance"]["curve"]} '
              f'({summary["performance"]["why"]}); window '
              f'{summary["smooth_window"]}, slope tolerance {summary["slope_tolerance"]}.', '',
              '| stage | from step | to step |', '| --- | --- | --- |']
    lines += [f'| {s["name"]} | {s["start"]} | {s["end"]} |' for s in st['stages']]
    lines += ['', f'- working-language crossover: step {summary.get("crossover_step")} '
              f'(in Transition: {summary.get("crossover_agrees")})',
              f'- transferring neurons peak: step {summary.get("transferring_peak_step")} '
              f'(in Transition: {summary.get("transferring_agrees")})',
              f'- Eq. 1 system share vs measured Python mass share: correlation '
              f'{summary.get("eq1_vs_measured_correlation")}', '']
  lines += [f'![{p}]({p})' for p in plots]
  lines += ['', 'All numbers: `probes.csv`, `summary.json`; raw per-checkpoint results: '
            '`../probes/<step>.json`.', '']
  return '\n'.join(lines)
