"""`--mode experiment`: the paper's whole study from one config, in resumable phases.

0 corpus     build the corpus and tokenizer (data.source = corpus; reused when built)
1 primary    pre-train on the primary language (Python by default)
2 continual  continual pre-training on each new language (real ones and planted controls) from
             phase 1, experiment.seeds seeds, dense checkpoints; and the reference runs: from
             scratch on each new language alone, the same steps and checkpoints
3 dynamics   probes and evaluation streamed over those checkpoints (measurements only)
4 mixture    the curves interpreted (babel_jax.dynamics), the Babel Tower mixture fitted (real
             languages only: the controls calibrate the instruments, they get no share) and
             every other strategy of experiment.strategies (RegMix trains its proxies here)
5 scratch    from-scratch multilingual runs on every distinct mixture at equal compute,
             experiment.seeds seeds each
6 compare    held-out loss, solution loss and pass@1 per language: means, 95% intervals, the
             winner by Welch + Holm over the strategy pairs
7 target     (experiment.decision_check) the mixtures again at experiment.target_scale, and
             whether the small scale ranked them as the target scale does
Phases 4 to 7 live in experiment/bakeoff.py. Then the per-run reports, controls.json,
mixtures.json and the study's report are (re)written.

A phase writes phases/<n>-<name>.json last, holding a fingerprint of the configs it ran with;
running the command again skips finished phases and resumes the unfinished one (each training,
probe and evaluation run resumes on its own). A finished phase whose config has since changed
is an error, never a silent re-run over its results.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable

import jax

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import io
from babel_jax.data import corpus, tokenizer
from babel_jax.data import mixture_spec as spec_lib
from babel_jax.dynamics import analysis as analysis_lib
from babel_jax.dynamics import curves as curves_lib
from babel_jax.dynamics import controls as controls_lib
from babel_jax.dynamics import run_report, study_report
from babel_jax.errors import ConfigError
from babel_jax.evaluation import evaluate
from babel_jax.evaluation.languages import LANGUAGES
from babel_jax.experiment import bakeoff as bakeoff_lib
from babel_jax.experiment import runs
from babel_jax.experiment.runs import log as _log, write_json as _write_json
from babel_jax.mixture import optimize
from babel_jax.probes import stream
from babel_jax.probes.prober import Prober
from babel_jax.runtime import factory
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop
from babel_jax.train import metrics as metrics_lib

PHASES = ('corpus', 'primary', 'continual', 'dynamics', 'mixture', 'scratch', 'compare',
          'target')
LAST = len(PHASES) - 1


class Study:
  """One study directory: runs phases in order, skipping finished ones."""

  def __init__(self, cfg, workdir: str):
    self.cfg, self.workdir = cfg, workdir
    self.languages = list(cfg.data.languages)
    self.real = runs.real_languages(cfg)
    self.new = runs.new_languages(cfg)
    self.controls = runs.controls(cfg)
    self.settings = cfg.dynamics
    self.started = time.perf_counter()
    self._why_not_evaluated: dict[str, str] = {}
    self.pass_unmeasured: dict[str, str] = {}  # language -> why its pass@1 is not measured
    self._dynamics: dict[str, list[tuple[curves_lib.Curves, analysis_lib.Analysis]]] | None = None
    self._probers: dict[str, Prober] = {}
    self.bakeoff = bakeoff_lib.Bakeoff(self)

  def phase(self, n: int, fingerprint: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    name = PHASES[n]
    path = runs.phase_path(self.workdir, n, name)
    if os.path.exists(path):
      record = io.read_json(path)
      if record['fingerprint'] != fingerprint:
        raise ConfigError(
            f'phase {n} ({name}) of {self.workdir} finished with another config (fingerprint '
            f'{record["fingerprint"]}, now {fingerprint}); its results stay as they are: use a '
            f'new --workdir, or move {path} away to run the phase again')
      _log(f'phase {n}/{LAST} {name}: done already ({record["seconds"]:.0f}s), skipped')
      return record['outputs']
    _log(f'phase {n}/{LAST} {name}: start')
    t = time.perf_counter()
    outputs = fn()
    seconds = time.perf_counter() - t
    _write_json(path, {'phase': n, 'name': name, 'fingerprint': fingerprint,
                       'seconds': seconds, 'finished': time.strftime('%Y-%m-%d %H:%M:%S'),
                       'outputs': outputs})
    _log(f'phase {n}/{LAST} {name}: done in {seconds:.0f}s (study so far '
         f'{time.perf_counter() - self.started:.0f}s)')
    return outputs

  # Phase 0 ------------------------------------------------------------------------------------
  def corpus(self) -> dict[str, Any]:
    c = self.cfg
    corpus_dir, tok_dir = data_lib.corpus_dir(c, self.workdir), data_lib.tokenizer_dir(c, self.workdir)
    corpus.build_corpus(c.corpus, corpus_dir)
    info = tokenizer.train(c.tokenizer, c.tokenizer.vocab_size or c.model.vocab_size,
                           corpus_dir, tok_dir)
    return {'corpus_dir': corpus_dir, 'tokenizer_dir': tok_dir,
            'train_tokens': {k: v['train'] for k, v in info['tokens'].items()}}

  # Phases 1, 2, 5: training -------------------------------------------------------------------
  def train(self, run_cfg, run_dir: str, what: str) -> None:
    if RunDir(run_dir).has_checkpoint(run_cfg.train.steps):
      _log(f'{what}: finished already ({run_dir})')
      return
    _log(f'{what}: {run_cfg.train.steps} steps -> {run_dir}')
    result = loop.train(run_cfg, run_dir)
    if result['status'] != 'finished':
      raise SystemExit(f'experiment: {what} stopped ({result["status"]}) at step '
                       f'{result["step"]}; run the same command again to resume')

  def primary(self) -> dict[str, Any]:
    run_dir = runs.primary_dir(self.workdir)
    self.train(runs.primary_config(self.cfg, self.workdir), run_dir,
               f'primary pre-training ({runs.primary(self.cfg)})')
    return {'run': run_dir}

  def dense_runs(self):
    """(kind, language, k, config, directory) of every continual and reference run."""
    for kind, config, folder in (
        ('continual', runs.continual_config, runs.continual_dir),
        ('reference', runs.reference_config, runs.reference_dir)):
      if kind == 'reference' and not self.cfg.experiment.reference:
        continue
      for lang in self.new:
        for k in runs.seeds(self.cfg, reference=kind == 'reference'):
          yield kind, lang, k, config(self.cfg, self.workdir, lang, k), folder(
              self.workdir, lang, k)

  def continual(self) -> dict[str, Any]:
    todo = list(self.dense_runs())
    for i, (kind, lang, k, run_cfg, run_dir) in enumerate(todo):
      what = 'continual pre-training' if kind == 'continual' else 'from scratch (reference)'
      self.train(run_cfg, run_dir, f'{what} {i + 1}/{len(todo)} ({lang}, seed {run_cfg.seed})')
    return {'runs': [run_dir for *_, run_dir in todo]}

  # Phase 3 ------------------------------------------------------------------------------------
  def evaluable(self, lang: str) -> bool:
    """Whether HumanEval runs for lang; says once why not."""
    if lang not in self._why_not_evaluated:
      why = ''
      if not self.cfg.experiment.evaluate:
        why = 'experiment.evaluate is False'
      elif self.cfg.data.source != 'corpus':
        why = 'HumanEval needs a tokenizer (data.source = corpus)'
      elif lang not in LANGUAGES:
        why = 'no HumanEval translation'
      elif LANGUAGES[lang].missing_tools():
        why = f'{LANGUAGES[lang].missing_tools()} not installed (launch/setup.sh installs them)'
      if why:
        _log(f'no evaluation of {lang}: {why}')
      self._why_not_evaluated[lang] = why
    return not self._why_not_evaluated[lang]

  def measure(self) -> dict[str, Any]:
    """Phase 3: probes over every checkpoint of each continual and reference run, on the study's
    held-out sample; HumanEval over the continual runs' checkpoints."""
    todo = list(self.dense_runs())
    for i, (kind, lang, _, run_cfg, run_dir) in enumerate(todo):
      pcfg = runs.probe_config(run_cfg, self.cfg.seed, reference=kind == 'reference')
      _log(f'probing {i + 1}/{len(todo)} ({kind}, {lang}): {run_dir}')
      stream.walk(pcfg, run_dir, prober=self.prober(kind, pcfg, run_dir))
      if kind == 'continual' and self.cfg.experiment.evaluate_continual and self.evaluable(lang):
        _log(f'evaluating {lang}: {run_dir}')
        evaluate.walk(pcfg, run_dir)
    return {'runs': [run_dir for *_, run_dir in todo]}

  def sampled(self, lang: str, result: dict, pcfg) -> bool:
    """Whether any problem of lang was sampled and run; if none was (every prompt too long or
    untranslated), pass@1 is not measured, not 0: says so once."""
    skipped = result['outcomes']['prompt_too_long'] + result['outcomes']['untranslated']
    if sum(result['outcomes'].values()) > skipped:
      return True
    if lang not in self.pass_unmeasured:
      self.pass_unmeasured[lang] = (
          f'no problem was sampled: every prompt was longer than model.max_len - '
          f'eval.max_new_tokens allows ({pcfg.model.max_len} - {pcfg.eval.max_new_tokens} '
          'tokens) or untranslated')
      _log(f'pass@1 {lang}: not measured: {self.pass_unmeasured[lang]}')
    return False

  def prober(self, kind: str, pcfg, run_dir: str) -> Prober:
    """One prober per kind of run, built on its first run: every run of a kind has the same
    model, languages and held-out sample, so the compiled probes are shared."""
    if kind not in self._probers:
      self._probers[kind] = Prober(pcfg, run_dir, factory.build_runtime(pcfg), threading.Lock())
    return self._probers[kind]

  # Phase 4 ------------------------------------------------------------------------------------
  def dynamics(self) -> dict[str, list[tuple[curves_lib.Curves, analysis_lib.Analysis]]]:
    """Every continual run's curves and what they say, per language and seed (computed once)."""
    if self._dynamics is None:
      self._dynamics = {}
      for lang in self.new:
        for k in runs.seeds(self.cfg):
          c = curves_lib.load(runs.continual_dir(self.workdir, lang, k), lang,
                              self.settings.performance)
          self._dynamics.setdefault(lang, []).append((c, analysis_lib.analyze(c, self.settings)))
    return self._dynamics

  def references(self) -> dict[str, list[curves_lib.Curves]] | None:
    """The reference runs' curves, per language and seed (their held-out loss is what counts)."""
    if not self.cfg.experiment.reference:
      return None
    return {lang: [curves_lib.load(runs.reference_dir(self.workdir, lang, k), lang, 'loss')
                   for k in runs.seeds(self.cfg, reference=True)] for lang in self.new}

  def mixture(self, train_tokens: dict[str, float] | None) -> dict[str, Any]:
    e = self.cfg.experiment
    dynamics = self.dynamics()
    _write_json(runs.study_file(self.workdir, 'dynamics.json'),
                {lang: [analysis_lib.summary(c, a) for c, a in seeds]
                 for lang, seeds in dynamics.items()})
    configured = spec_lib.from_config(self.cfg) if e.original == 'config' else None
    if configured is not None:
      configured = spec_lib.restricted(configured, self.real)
    base = optimize.original(e.original, self.real, train_tokens, e.temperature, configured)
    budget = e.primary_tokens or (train_tokens or {}).get(self.languages[0], 0)
    if not budget:
      raise ConfigError('experiment.primary_tokens is 0 and the corpus token counts are unknown '
                        '(synthetic data): set experiment.primary_tokens')
    # Algorithm 1 caps each language by the tokens the study has of it: the original mixture's
    # when it states token counts (data.target_tokens), else the corpus's.
    stated = base.provenance.get('target_tokens')
    available = {k: float(v) for k, v in stated.items()} if stated else train_tokens
    optimized = optimize.optimize(
        {lang: [a.eq1 for _, a in seeds] for lang, seeds in dynamics.items()
         if lang in self.real}, self.real, base, budget, available, e.fit_fallback)
    for lang, why in optimized.provenance['kept_original'].items():
      _log(f'optimized mixture: {lang}: {why}')
    return self.bakeoff.choose(train_tokens, base, optimized)

  # The reports --------------------------------------------------------------------------------
  def report(self) -> str:
    """Rewrites every continual run's report, controls.json and the study's report; returns the
    page's path."""
    pages = {}
    for lang in self.new:
      for k in runs.seeds(self.cfg):
        run = RunDir(runs.continual_dir(self.workdir, lang, k))
        run_report.write(run, dataclasses.replace(self.settings, language=lang))
        pages.setdefault(lang, []).append(os.path.relpath(
            os.path.join(run.report_dir, 'index.md'), runs.report_dir(self.workdir)))
    table = controls_lib.table(self.dynamics(), self.references(), self.controls)
    _write_json(runs.study_file(self.workdir, 'controls.json'), table)
    bake = self.bakeoff.summary()
    _write_json(runs.study_file(self.workdir, 'mixtures.json'), bake)
    study = study_report.Study(
        languages=tuple(self.real), dynamics=self.dynamics(), run_reports=pages,
        phases=[io.read_json(p) for p in runs.phase_records(self.workdir)],
        seeds=self.cfg.experiment.seeds, bakeoff=bake, controls=table)
    return study_report.write(runs.report_dir(self.workdir), study)


def run(cfg, workdir: str, through: str = 'compare') -> str:
  """Runs (or resumes) the study in workdir; returns the path of its report. `through='dynamics'`
  stops after phase 3 and writes controls.json only (the calibration sweep's use)."""
  cfg = runs.with_controls(config_lib.validate(cfg))
  RunDir(workdir).ensure_writable()
  needs_tokens = [n for n in runs.strategies(cfg) if n in ('natural', 'temperature', 'unimax')]
  if cfg.data.source != 'corpus' and needs_tokens:
    raise ConfigError(f'experiment.strategies: {needs_tokens[0]} needs the corpus token counts '
                      '(data.source = corpus); on synthetic data use uniform, config, babel or '
                      'regmix')
  if not runs.new_languages(cfg):
    raise ConfigError('the experiment needs at least one new language: data.languages is '
                      f'{config_lib.joined(cfg.data.languages)!r}')
  # Every run of the study compiles the same programs: keep them across runs and restarts, the
  # quick ones too (by default only programs that took a second to compile are kept).
  jax.config.update('jax_compilation_cache_dir', os.path.join(os.path.abspath(workdir),
                                                              'jax_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  if jax.process_index() == 0:
    io.write_keeping_old(runs.study_file(workdir, 'config.json'), config_lib.to_json(cfg))
  if not cfg.train.peak_flops:  # measured once for every run's MFU line
    cfg = runs.derive(cfg, workdir, {'train.peak_flops': metrics_lib.measure_peak_flops(
        jax.devices(), dtype=cfg.model.dtype)})
  s = Study(cfg, workdir)
  tokens = None
  if cfg.data.source == 'corpus':
    # How the corpus is built (local or Beam, with which options) is not what it holds.
    corpus_settings = {k: v for k, v in cfg.corpus.to_dict().items()
                       if k not in ('runner', 'beam_options')}
    tokens = s.phase(0, runs.fingerprint(corpus_settings, cfg.tokenizer,
                                         {'vocab': cfg.model.vocab_size}), s.corpus)['train_tokens']
  else:
    _log(f'phase 0/{LAST} corpus: synthetic data, nothing to build')
  w, train, measures = workdir, runs.TRAINING, runs.MEASURES
  s.phase(1, runs.fingerprint(runs.primary_config(cfg, w), sections=train), s.primary)
  dense = [c for *_, c, _ in s.dense_runs()]
  s.phase(2, runs.fingerprint(*dense, sections=train), s.continual)
  s.phase(3, runs.fingerprint(*dense, {'evaluate': [cfg.experiment.evaluate,
                                                    cfg.experiment.evaluate_continual]},
                              sections=measures), s.measure)
  if through == 'dynamics':
    path = runs.study_file(workdir, 'controls.json')
    _write_json(path, controls_lib.table(s.dynamics(), s.references(), s.controls))
    _log(f'finished through phase 3 in {time.perf_counter() - s.started:.0f}s; controls: {path}')
    return path
  e, b = cfg.experiment, s.bakeoff
  # UniMax's budget and RegMix's proxies follow the bake-off runs' config; the others do not.
  chosen = [b.names, e.objective if 'regmix' in b.names else None]
  if 'unimax' in b.names:
    chosen += [e.unimax_epochs, runs.fingerprint(runs.scratch_config(cfg, w, 'any', 0),
                                                 sections=train)]
  if 'regmix' in b.names:
    chosen += [e.regmix_runs, e.regmix_concentration, runs.fingerprint(
        runs.proxy_config(cfg, w, dict.fromkeys(s.real, 1.0), 0), sections=train)]
  s.phase(4, runs.fingerprint(cfg.dynamics, {
      'fit': [e.original, e.temperature, e.primary_tokens, e.fit_fallback,
              config_lib.joined(e.controls)],
      'configured': [config_lib.joined(cfg.data.weights), config_lib.joined(cfg.data.target_tokens),
                     cfg.data.mixture],
      'strategies': chosen,
      'tokens': tokens}), lambda: s.mixture(tokens))
  scratch = [c for _, c, _ in b.runs()]
  mixtures = list(b.weights().values())
  s.phase(5, runs.fingerprint(*scratch, *mixtures, sections=train), b.train)
  s.phase(6, runs.fingerprint(*scratch, {'evaluate': e.evaluate, 'objective': e.objective},
                              sections=measures), b.compare)
  if e.decision_check:
    target = [c for _, c, _ in b.runs(e.target_scale)]
    s.phase(7, runs.fingerprint(*scratch, *target, *mixtures, {
        'evaluate': e.evaluate, 'objective': e.objective}, sections=measures), b.target)
  else:
    _log(f'phase 7/{LAST} target: experiment.decision_check is False: the small-scale ranking '
         'is not checked at a larger scale')
  path = s.report() if jax.process_index() == 0 else ''
  _log(f'finished in {time.perf_counter() - s.started:.0f}s; report: {path}')
  return path
