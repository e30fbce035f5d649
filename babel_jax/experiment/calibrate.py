"""`--mode calibrate`: the planted controls at several scales, and at which scale each instrument
first tells them apart.

A scale is MULTIPLIER@WIDTH (`calibrate.scales`): continual runs `experiment.continual_steps` x
MULTIPLIER steps long (their reference runs `experiment.reference_factor` times that), on a model
of d_model WIDTH. Each scale is a study of the three controls alone (no real new language, no
mixture: phases 0-3 of `--mode experiment`, then controls.json) in WORKDIR/scales/<scale>/. The
corpus is built once (WORKDIR/corpus) and the primary model once per width (the scales of one
width share it). After every scale, calibration.json and calibration.md are rewritten: per
instrument and pair, the smallest scale at which it separates the pair as transfer predicts after
Holm's correction (or "not seen up to" the largest scale run), so a stopped sweep still reports
what it measured, and running the command again resumes it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.dynamics import controls as controls_lib
from babel_jax.errors import ConfigError
from babel_jax.experiment import driver, runs

# The controls' pairs with a direction transfer predicts (clone and partial vs scrambled).
PAIRS = tuple((a, b) for a, b, expect, _ in controls_lib.PAIRS if expect)


@dataclasses.dataclass(frozen=True)
class Scale:
  multiplier: int  # continual steps x this
  width: int  # d_model

  @property
  def name(self) -> str:
    return f'x{self.multiplier}-w{self.width}'


def parse_scales(text: str | Iterable[str]) -> list[Scale]:
  """'1@64,4@64' -> [Scale(1, 64), Scale(4, 64)]; one clear error for anything else."""
  out = []
  for item in config_lib.items(text):
    try:
      m, w = item.split('@')
      out.append(Scale(int(m), int(w)))
    except ValueError:
      raise ConfigError(f'calibrate.scales: {item!r} is not MULTIPLIER@WIDTH (e.g. 4@64)') from None
    if out[-1].multiplier < 1 or out[-1].width < 1:
      raise ConfigError(f'calibrate.scales: {item!r} needs a multiplier and width >= 1')
  if not out:
    raise ConfigError('calibrate.scales is empty: expected e.g. "1@64,4@64,16@64"')
  return out


def scale_config(cfg, scale: Scale, workdir: str) -> config_lib.Config:
  """The study of one scale: the controls alone, continual steps and width scaled."""
  cfg = config_lib.validate(cfg)
  if not cfg.experiment.controls:
    raise ConfigError('calibrate needs experiment.controls (e.g. "clone,partial,scrambled")')
  return config_lib.replace(cfg, **{
      'data.languages': cfg.data.languages[:1], 'data.weights': (), 'data.target_tokens': (),
      'data.mixture': '', 'experiment.new_languages': (), 'experiment.evaluate': False,
      'experiment.evaluate_continual': False,
      'experiment.continual_steps': runs.steps(cfg, 'continual') * scale.multiplier,
      'model.d_model': scale.width,
      'data.corpus_dir': os.path.abspath(os.path.join(workdir, 'corpus'))})


def _share_primary(workdir: str, scale: Scale, first: dict[int, str]) -> None:
  """Scales of one width train one primary model: later ones link to the first's."""
  target = os.path.join(workdir, 'scales', scale.name, 'primary')
  source = first.setdefault(scale.width, target)
  if source != target and not os.path.exists(target) and os.path.isdir(source):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.symlink(os.path.relpath(source, os.path.dirname(target)), target)


def _as_predicted(table: dict[str, Any]) -> set[tuple[str, str, str]]:
  """(instrument, kind, kind) of every pair a controls table separates as transfer predicts
  (after Holm: the entry's `as_predicted`)."""
  return {(e['instrument'], controls_lib.kind(e['pair'][0]), controls_lib.kind(e['pair'][1]))
          for e in table['separation'] if e.get('as_predicted')}


def summarise_calibration(tables: dict[str, dict[str, Any]], order: list[str]) -> dict[str, Any]:
  """Per instrument and pair: the first scale (in `order`, cheapest first) whose controls table
  separates the pair as predicted after Holm, with every scale's verdict."""
  done = [n for n in order if n in tables]
  separated = {name: _as_predicted(tables[name]) for name in done}
  rows = []
  for instrument in controls_lib.INSTRUMENTS:
    for a, b in PAIRS:
      verdicts = {name: (instrument, a, b) in separated[name] for name in done}
      first = next((n for n in done if verdicts[n]), None)
      rows.append({'instrument': instrument, 'pair': f'{a} vs {b}', 'first_scale': first,
                   'verdicts': verdicts})
  censored = {name: {controls_lib.kind(lang): row['summary']['transfer_end'].get('censored', 0)
                     for lang, row in tables[name]['languages'].items()} for name in done}
  return {'scales': done, 'rows': rows, 'censored': censored}


def markdown(summary: dict[str, Any]) -> str:
  """The calibration table: what a user reads before spending accelerator hours."""
  done = summary['scales']
  lines = ['# Calibration: the smallest scale at which each instrument sees transfer', '',
           'Scale xM-wW: continual runs M times the demo\'s tokens on a d_model-W model. A cell '
           'is the first scale at which the instrument separates the pair in the direction '
           'transfer predicts after Holm\'s correction over the pair\'s instruments.', '',
           '| instrument | pair | first scale | ' + ' | '.join(done) + ' |',
           '| --- | --- | --- | ' + ' | '.join('---' for _ in done) + ' |']
  for r in summary['rows']:
    first = r['first_scale'] or (f'not seen up to {done[-1]}' if done else 'no scale run')
    cells = ['yes' if r['verdicts'].get(n) else 'no' for n in done]
    lines.append(f'| {r["instrument"]} | {r["pair"]} | {first} | ' + ' | '.join(cells) + ' |')
  lines += ['', 'Censored effective-transfer readings (continual run below every loss its '
            'reference reached; left out of the tests), per scale: ' + '; '.join(
                f'{n}: ' + ', '.join(f'{k} {c}' for k, c in summary['censored'][n].items())
                for n in done) + '.']
  return '\n'.join(lines) + '\n'


def run(cfg, workdir: str) -> str:
  """Runs (or resumes) every scale in order; returns the path of calibration.md."""
  cfg = config_lib.validate(cfg)
  scales = parse_scales(cfg.calibrate.scales)
  tables: dict[str, dict[str, Any]] = {}
  first_primary: dict[int, str] = {}
  path = os.path.join(workdir, 'calibration.md')
  for i, scale in enumerate(scales):
    study_dir = os.path.join(workdir, 'scales', scale.name)
    _share_primary(workdir, scale, first_primary)
    io.log(f'calibrate: scale {i + 1}/{len(scales)} {scale.name} -> {study_dir}')
    table_path = driver.run(scale_config(cfg, scale, workdir), study_dir, through='dynamics')
    tables[scale.name] = io.read_json(table_path)
    summary = summarise_calibration(tables, [s.name for s in scales])
    io.write_json(os.path.join(workdir, 'calibration.json'), summary)
    io.atomic_write(path, markdown(summary))
    io.log(f'calibrate: {scale.name} done; table: {path}')
  return path
