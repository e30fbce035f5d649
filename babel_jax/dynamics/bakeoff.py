"""The mixture bake-off read out: per strategy, metric and language, the mean over seeds with its
95% interval, the winner (Welch + Holm over the strategy pairs, dynamics/ranking.py), and, when a
larger target scale was run, how well the small scale ranked the strategies.

`measured` is what the experiment driver gathers from the final checkpoints of the from-scratch
runs: {strategy: [per seed {'heldout_loss' | 'solution_loss' | 'pass@1': {language: value}}]}.
Strategies whose mixtures are identical ran once; they appear as one entry, named by the first
of them, and `identical` says which others it stands for.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.dynamics import ranking, stats
from babel_jax.dynamics.stats import interval_text as _iv, number_text as _fmt

METRICS = (('heldout_loss', True), ('solution_loss', True), ('pass@1', False))  # lower better?


def objective_name(objective: str) -> str:
  """The pseudo-language of the objective's rows: 'mean(new)' or 'worst(new)'."""
  return f'{objective}(new)'


def objective_value(losses: dict[str, float], new: Sequence[str], objective: str) -> float | None:
  """The mean, or the worst (highest), held-out loss over the new languages; None if one lacks."""
  values = [losses.get(lang) for lang in new]
  if not values or any(v is None for v in values):
    return None
  return float(np.mean(values) if objective == 'mean' else np.max(values))


def _values(runs: list[dict[str, Any]], metric: str, lang: str, new: Sequence[str],
            objective: str) -> list[float]:
  if lang == objective_name(objective):
    values = [objective_value(r.get('heldout_loss', {}), new, objective) for r in runs]
    return [v for v in values if v is not None]
  return [r[metric][lang] for r in runs if lang in r.get(metric, {})]


def row_keys(languages: Sequence[str], objective: str) -> list[tuple[str, str, bool]]:
  """(metric, language, lower_is_better) of every row, the objective first."""
  keys = [('heldout_loss', objective_name(objective), True)]
  return keys + [(m, lang, lower) for m, lower in METRICS for lang in languages]


def table(measured: dict[str, list[dict[str, Any]]], languages: Sequence[str],
          new: Sequence[str], objective: str) -> list[dict[str, Any]]:
  """One row per (metric, language) that every strategy measured: intervals and the winner."""
  rows = []
  for metric, lang, lower in row_keys(languages, objective):
    per = {name: _values(runs, metric, lang, new, objective) for name, runs in measured.items()}
    if not per or any(not v for v in per.values()):
      continue  # not measured for some strategy (pass@1 unmeasurable, no solutions)
    w = ranking.winner(per, lower_is_better=lower)
    rows.append({'metric': metric, 'language': lang, 'lower_is_better': lower,
                 'strategies': {name: stats.interval(v) for name, v in per.items()},
                 'winner': w['winner'], 'verdict': w['verdict'], 'pairs': w['pairs']})
  return rows


def decision(small: dict[str, list[dict[str, Any]]], target: dict[str, list[dict[str, Any]]],
             languages: Sequence[str], new: Sequence[str], objective: str,
             seed: int = 0) -> list[dict[str, Any]]:
  """Per row: pairwise decision accuracy and Spearman's rho between the small-scale and the
  target-scale means, with bootstrap intervals over seeds."""
  out = []
  for metric, lang, lower in row_keys(languages, objective):
    s = {n: _values(r, metric, lang, new, objective) for n, r in small.items()}
    t = {n: _values(r, metric, lang, new, objective) for n, r in target.items()}
    names = [n for n in s if s[n] and t.get(n)]
    if len(names) < 2:
      continue
    a = ranking.agreement({n: s[n] for n in names}, {n: t[n] for n in names}, seed=seed)
    out.append({'metric': metric, 'language': lang, 'lower_is_better': lower, **a})
  return out


def _names(bake: dict[str, Any]) -> dict[str, str]:
  """Column titles: a strategy and those whose identical mixture it stands for."""
  return {n: ' = '.join([n, *others]) for n, others in bake['identical'].items()}


def section(bake: dict[str, Any], plot: str | None) -> list[str]:
  """The report's 'Mixture bake-off' section from mixtures.json."""
  names, rows = _names(bake), bake['rows']
  lines = ['## Mixture bake-off', '',
           f'Every distinct mixture trained from scratch at equal compute ({bake["tokens_per_run"]:.4g} '
           f'tokens, {bake["parameters"]:,} parameters per run), {bake["seeds"]} seeds each; '
           f'final checkpoints. Mean [{stats.CONFIDENCE:.0%} interval]. The winner beats every '
           'other strategy by Welch\'s test, Holm-corrected over the strategy pairs; '
           f'`{objective_name(bake["objective"])}` is the objective (held-out loss over the new '
           'languages).', '',
           '| strategy | ' + ' | '.join(bake['languages']) + ' | provenance |',
           '| --- |' + ' --- |' * (len(bake['languages']) + 1)]
  for n, title in names.items():
    notes = '; '.join(f'{m}: {bake["notes"][m]}' for m in [n, *bake['identical'][n]]
                      if bake['notes'].get(m))
    lines.append(f'| {title} | ' + ' | '.join(f'{w:.3f}' for w in bake['weights'][n].values())
                 + f' | {notes} |')
  lines += ['', '| metric | language | ' + ' | '.join(names.values()) + ' | winner |',
            '| --- | --- |' + ' --- |' * (len(names) + 1)]
  for r in rows:
    lines.append(f'| {r["metric"]} | {r["language"]} | ' + ' | '.join(
        _iv(r['strategies'][n]) for n in names) + f' | {r["verdict"]} |')
  lines += [''] + _decision_lines(bake)
  for lang, why in bake.get('pass@1_not_measured', {}).items():
    lines.append(f'pass@1 of {lang} is not measured, not 0: {why}.')
  if plot:
    lines += ['', f'![bake-off]({plot})']
  return lines + ['']


def _decision_lines(bake: dict[str, Any]) -> list[str]:
  d = bake.get('decision')
  if not d:
    return [f'Decision check: not run ({bake.get("decision_skipped", "")}); the small-scale '
            'ranking is not checked at a larger scale.', '']
  lines = [f'Decision check: the same mixtures at {d["scale"]:g}x parameters '
           f'({d["parameters"]:,}) and {d["scale"]:g}x tokens. Decision accuracy is the share '
           'of strategy pairs the small scale orders as the target scale does (DataDecide); '
           'intervals are bootstrap over seeds.', '',
           '| metric | language | decision accuracy | Spearman rho | target winner |',
           '| --- | --- | --- | --- | --- |']
  winners = {(r['metric'], r['language']): r['verdict'] for r in d['rows']}
  for a in d['agreement']:
    acc, rho = a['accuracy'], a['rho']
    lines.append(f'| {a["metric"]} | {a["language"]} | {_fmt(acc["value"], 2)} '
                 f'[{_fmt(acc["low"], 2)}, {_fmt(acc["high"], 2)}] | {_fmt(rho["value"], 2)} '
                 f'[{_fmt(rho["low"], 2)}, {_fmt(rho["high"], 2)}] | '
                 f'{winners.get((a["metric"], a["language"]), "–")} |')
  return lines + ['']


def finding(bake: dict[str, Any]) -> str:
  """One sentence for the report's findings."""
  rows = bake['rows']
  won = [f'{r["language"]} {r["metric"]}: {r["winner"]}' for r in rows if r['winner']]
  same = [f'{" = ".join([n, *o])}' for n, o in bake['identical'].items() if o]
  text = (f'{len(bake["identical"])} distinct mixtures of {len(bake["strategies"])} strategies'
          + (f' ({"; ".join(same)} identical)' if same else '') + '; '
          + (f'clear winners: {", ".join(won)}; ' if won else 'no clear winner on any row; ')
          + f'{len(rows) - len(won)} of {len(rows)} metric-language rows separate no strategy '
          'at this scale.')
  d = bake.get('decision')
  if d:
    obj = next((a for a in d['agreement'] if a['language'] == objective_name(bake['objective'])),
               None)
    if obj and obj['accuracy']['value'] is not None:
      text += (f' At {d["scale"]:g}x the small scale orders '
               f'{obj["accuracy"]["value"]:.0%} of the strategy pairs alike on the objective.')
  return text


def plot(plt, bake: dict[str, Any]):
  """Bars of every strategy per language on the held-out loss (and the objective), with their
  95% intervals; the target scale beside it when it ran."""
  panels = [('bake-off', bake['rows'])]
  if bake.get('decision'):
    panels.append((f'{bake["decision"]["scale"]:g}x target', bake['decision']['rows']))
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.4), squeeze=False)
  titles = _names(bake)
  names = list(titles)
  for ax, (title, rows) in zip(axes[0], panels):
    sel = [r for r in rows if r['metric'] == 'heldout_loss']
    x = np.arange(len(sel))
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
      ivs = [r['strategies'][n] for r in sel]
      err = [0 if iv['low'] is None else iv['mean'] - iv['low'] for iv in ivs]
      ax.bar(x + (i - (len(names) - 1) / 2) * width, [iv['mean'] for iv in ivs], width,
             yerr=err, capsize=2, label=titles[n])
    lows = [iv['low'] or iv['mean'] for r in sel for iv in r['strategies'].values()]
    if lows:
      ax.set_ylim(bottom=0.95 * min(lows))
    ax.set_xticks(x, [r['language'] for r in sel], fontsize=7)
    ax.set(title=title, ylabel='held-out loss (lower is better)')
    ax.legend(fontsize=6)
  return fig
