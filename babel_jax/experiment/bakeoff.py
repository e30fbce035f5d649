"""Phases 4 to 7 of the study: the mixture bake-off.

4 mixture  every strategy of experiment.strategies as a MixtureSpec (mixture/<strategy>.json);
           RegMix trains its proxy runs here (proxy/run<i>)
5 scratch  every distinct mixture from scratch at equal compute, experiment.seeds seeds
           (scratch/<strategy>/seed<k>); strategies with identical mixtures run once
6 compare  held-out loss, solution loss and pass@1 of the final checkpoints -> comparison.json
7 target   (experiment.decision_check) the same mixtures at experiment.target_scale
           (target/<strategy>/seed<k>) and how well the small scale ranked them -> decision.json
mixtures.json, at the study's root, gathers the strategies, their mixtures and both tables.
"""

from __future__ import annotations

import os
from typing import Any

import jax

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.data import mixture_spec as spec_lib
from babel_jax.data.mixture_spec import MixtureSpec
from babel_jax.dynamics import bakeoff as bakeoff_lib
from babel_jax.dynamics import stats
from babel_jax.errors import ConfigError
from babel_jax.evaluation import evaluate
from babel_jax.experiment import runs
from babel_jax.experiment.runs import log as _log, write_json as _write_json
from babel_jax.mixture import optimize, regmix, strategies as strategies_lib
from babel_jax.probes import result as result_lib
from babel_jax.probes import stream
from babel_jax.runtime import factory
from babel_jax.runtime.rundir import RunDir


def baseline(cfg, name: str, real: list[str], tokens: dict[str, float] | None) -> MixtureSpec:
  """A strategy that needs no measurement: natural, uniform, temperature, config or unimax."""
  e = cfg.experiment
  if name == 'unimax':
    if not tokens:
      raise ConfigError('experiment.strategies: unimax needs the corpus token counts '
                                   '(data.source = corpus)')
    budget = float(runs.tokens_per_run(cfg))
    return strategies_lib.unimax({lang: tokens[lang] for lang in real}, budget, e.unimax_epochs)
  configured = spec_lib.from_config(cfg) if name == 'config' else None
  if configured is not None:
    configured = spec_lib.restricted(configured, real)
  return optimize.original(name, real, tokens, e.temperature, configured)


class Bakeoff:
  """The bake-off of one study; `study` is the driver's Study (training, probes, evaluation)."""

  def __init__(self, study):
    self.study, self.cfg, self.workdir = study, study.cfg, study.workdir
    self.real = study.real
    self.new_real = [lang for lang in self.real[1:] if lang in study.new] or self.real[1:]
    self.names = runs.strategies(self.cfg)

  # Phase 4 ------------------------------------------------------------------------------------
  def choose(self, tokens, base: MixtureSpec, optimized: MixtureSpec) -> dict[str, Any]:
    """Writes every strategy's mixture; returns {strategy: weights}."""
    out = {}
    for name in self.names:
      if name == 'babel':
        spec = optimized
      elif name == 'regmix':
        spec = self.regmix(tokens or base.weights)
      elif name == self.cfg.experiment.original:
        spec = base
      else:
        spec = baseline(self.cfg, name, self.real, tokens)
      spec = spec_lib.extended(spec, list(self.cfg.data.languages))  # controls get no share
      path = runs.mixture_path(self.workdir, name)
      if jax.process_index() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        io.atomic_write(path, spec.to_json())
      out[name] = spec.weights
      _log(f'{name} mixture: ' + ', '.join(f'{k} {v:.3f}' for k, v in spec.weights.items()
                                           if k in self.real))
    return out

  def regmix(self, natural: dict[str, float]) -> MixtureSpec:
    """RegMix: proxy runs on Dirichlet mixtures around the natural shares, a regression from
    weights to the objective, and the mixture it predicts best."""
    e = self.cfg.experiment
    natural = {lang: float(natural[lang]) for lang in self.real}
    mixtures = regmix.proxy_mixtures(natural, e.regmix_runs, self.cfg.seed,
                                     e.regmix_concentration)
    metric = []
    for i, weights in enumerate(mixtures):
      run_cfg = runs.proxy_config(self.cfg, self.workdir, weights, i)
      run_dir = runs.proxy_dir(self.workdir, i)
      self.study.train(run_cfg, run_dir, f'RegMix proxy {i + 1}/{len(mixtures)}')
      pcfg = runs.probe_config(run_cfg, self.cfg.seed, final=True, reference=True)
      stream.walk(pcfg, run_dir, prober=self.study.prober('proxy', pcfg, run_dir))
      losses = dict(result_lib.load(RunDir(run_dir), run_cfg.train.steps).loss)
      metric.append(bakeoff_lib.objective_value(losses, self.new_real, e.objective))
    reg = regmix.fit(mixtures, metric, seed=self.cfg.seed)
    _log(f'RegMix: {reg.runs} proxies, cross-validated R^2 {reg.cv_r2:.2f}, Spearman '
         f'{reg.cv_spearman:.2f}')
    spec = regmix.best(reg, natural, seed=self.cfg.seed)
    return MixtureSpec(spec.weights, {**spec.provenance, 'objective': e.objective,
                                      'proxy_steps': runs.steps(self.cfg, 'regmix'),
                                      'proxies': [{'weights': w, 'objective': m}
                                                  for w, m in zip(mixtures, metric)]})

  # Phases 5 to 7 ------------------------------------------------------------------------------
  def weights(self) -> dict[str, dict[str, float]]:
    return {n: io.read_json(runs.mixture_path(self.workdir, n))['weights'] for n in self.names}

  def identical(self) -> dict[str, list[str]]:
    """{strategy that runs: [the later strategies whose mixture equals its own]}."""
    w, groups = self.weights(), {}
    for name in self.names:
      first = next((g for g in groups if runs.same_weights(w[g], w[name])), None)
      groups.setdefault(first or name, [])
      if first:
        groups[first].append(name)
    return groups

  def runs(self, scale: float = 1.0):
    """(strategy, config, directory) of every run of the distinct mixtures at a scale."""
    for name in self.identical():
      for k in range(self.cfg.experiment.seeds):
        yield name, runs.scratch_config(self.cfg, self.workdir, name, k, scale), \
            runs.scratch_dir(self.workdir, name, k, scale)

  def train(self, scale: float = 1.0) -> dict[str, Any]:
    todo = list(self.runs(scale))
    for name, others in self.identical().items():
      if others:
        _log(f'{", ".join(others)}: the same mixture as {name}, whose runs stand for them')
    where = 'from scratch' if scale == 1 else f'target scale {scale:g}x'
    for i, (name, run_cfg, run_dir) in enumerate(todo):
      self.study.train(run_cfg, run_dir, f'{where} {i + 1}/{len(todo)} ({name}, seed '
                       f'{run_cfg.seed})')
    return {'runs': [d for *_, d in todo]}

  def measure(self, scale: float = 1.0) -> dict[str, list[dict[str, Any]]]:
    """Per distinct strategy and seed: the final checkpoint's held-out loss, solution loss and
    pass@1 (where measurable)."""
    measured: dict[str, list[dict[str, Any]]] = {}
    todo = list(self.runs(scale))
    for i, (name, run_cfg, run_dir) in enumerate(todo):
      pcfg = runs.probe_config(run_cfg, self.cfg.seed, final=True)
      final, run = run_cfg.train.steps, RunDir(run_dir)
      _log(f'final probes and evaluation {i + 1}/{len(todo)}: {run_dir}')
      stream.walk(pcfg, run_dir, prober=self.study.prober(f'scratch{scale:g}', pcfg, run_dir))
      result = result_lib.load(run, final)
      row = {'run': run_dir, 'seed': run_cfg.seed, 'heldout_loss': dict(result.loss),
             'solution_loss': {k: v.loss for k, v in result.solution_loss.items()
                               if k in self.real}}
      langs = [lang for lang in self.real if self.study.evaluable(lang)]
      if langs:
        pcfg = config_lib.replace(pcfg, **{'eval.languages': tuple(langs)})
        evaluate.walk(pcfg, run_dir)
        results = run.eval_results(final)['results']
        row['pass@1'] = {lang: r['pass_at_k']['pass@1'] for lang, r in results.items()
                         if self.study.sampled(lang, r, pcfg)}
      measured.setdefault(name, []).append(row)
    return measured

  def compare(self) -> dict[str, Any]:
    measured = self.measure()
    rows = bakeoff_lib.table(measured, self.real, self.new_real, self.cfg.experiment.objective)
    path = runs.study_file(self.workdir, 'comparison.json')
    _write_json(path, {'runs': measured, 'rows': rows, 'confidence': stats.CONFIDENCE,
                       'identical': self.identical(),
                       'pass@1_not_measured': self.study.pass_unmeasured})
    for r in rows:
      _log(f'{r["metric"]} {r["language"]}: ' + ', '.join(
          f'{n} {iv["mean"]:.4f}' for n, iv in r['strategies'].items()) + f' -> {r["verdict"]}')
    return {'comparison': path}

  def target(self) -> dict[str, Any]:
    """Phase 7: trains and measures the target scale; the decision check against phase 6."""
    scale = self.cfg.experiment.target_scale
    self.train(scale)
    measured = self.measure(scale)
    small = io.read_json(runs.study_file(self.workdir, 'comparison.json'))['runs']
    obj = self.cfg.experiment.objective
    agreement = bakeoff_lib.decision(small, measured, self.real, self.new_real, obj,
                                     seed=self.cfg.seed)
    path = runs.study_file(self.workdir, 'decision.json')
    _write_json(path, {
        'scale': scale, 'parameters': self.parameters(scale),
        'tokens_per_run': runs.tokens_per_run(self.cfg, scale), 'runs': measured,
        'rows': bakeoff_lib.table(measured, self.real, self.new_real, obj),
        'agreement': agreement})
    for a in agreement:
      _log(f'decision accuracy {a["metric"]} {a["language"]}: {a["accuracy"]["value"]}')
    return {'decision': path}

  def parameters(self, scale: float = 1.0) -> int:
    name, run_cfg, _ = next(self.runs(scale))
    return factory.build_runtime(run_cfg).num_params

  def summary(self) -> dict[str, Any]:
    """mixtures.json: the strategies, their mixtures, the bake-off and the decision check."""
    comparison = io.read_json(runs.study_file(self.workdir, 'comparison.json'))
    mixtures = {n: io.read_json(runs.mixture_path(self.workdir, n)) for n in self.names}
    out = {'strategies': self.names, 'original': self.cfg.experiment.original,
           'objective': self.cfg.experiment.objective,
           'languages': self.real, 'seeds': self.cfg.experiment.seeds,
           'tokens_per_run': runs.tokens_per_run(self.cfg), 'parameters': self.parameters(),
           'identical': comparison['identical'],
           'weights': {n: {lang: m['weights'][lang] for lang in self.real}
                       for n, m in mixtures.items()},
           'notes': {n: _note(m['provenance']) for n, m in mixtures.items()},
           'provenance': {n: m['provenance'] for n, m in mixtures.items()},
           'rows': comparison['rows'],
           'pass@1_not_measured': comparison.get('pass@1_not_measured', {})}
    decision = runs.study_file(self.workdir, 'decision.json')
    if self.cfg.experiment.decision_check and os.path.exists(decision):
      out['decision'] = {k: v for k, v in io.read_json(decision).items() if k != 'runs'}
    else:
      out['decision_skipped'] = 'experiment.decision_check is False'
    return out


def _note(p: dict[str, Any]) -> str:
  """A strategy's provenance in a few words for the report's table."""
  s = p.get('strategy')
  if s == 'unimax':
    capped = ', '.join(p['capped']) or 'none'
    return f'budget {p["budget"]:.4g} tokens, at most {p["max_epochs"]:g} epochs (capped: {capped})'
  if s == 'regmix':
    weak = (' (the regression predicts worse than the proxies\' mean: its choice is not '
            'supported by its fit)' if p['cv_r2'] < 0 else '')
    return (f'{p["proxy_runs"]} proxies of {p["proxy_steps"]} steps; CV R^2 {p["cv_r2"]:.2f}, '
            f'Spearman {p["cv_spearman"]:.2f}{weak}')
  if s == 'babel_tower':
    kept = len(p.get('kept_original', {}))
    return (f'P* for {len(p["p_star"])} languages' + (f'; {kept} kept the original share'
                                                       if kept else ''))
  if s == 'temperature':
    return f'T = {p["temperature"]:g}'
  return ''
