"""The study's run directories and the config of each run, derived from the one study config.

Every run uses the study's full language list, so language ids, held-out samples and probes line
up across runs; only the mixture weights differ (one-hot for the primary and continual runs).
All runs read the study's corpus and tokenizer.

WORKDIR/ (this module owns these paths)
  config.json                        the study config (as resolved)
  corpus/                            phase 0 (corpus + tokenizer), when data.source = corpus
  primary/                           phase 1: primary-language pre-training
  continual/<lang>/seed<k>/          phase 2 (+ probes/, eval/ from phase 3, report/)
  reference/<lang>/seed<k>/          phase 2: from scratch on <lang> alone (+ probes/)
  dynamics.json, mixture/<strategy>.json   phase 4 (experiment/bakeoff.py)
  proxy/run<i>/                      phase 4: RegMix's proxy runs
  controls.json                      the controls' table, with the report
  scratch/<strategy>/seed<k>/        phase 5 (+ probes/, eval/ of the final step from phase 6)
  comparison.json                    phase 6
  target/<strategy>/seed<k>/, decision.json   phase 7 (experiment.decision_check)
  mixtures.json                      the bake-off: strategies, mixtures, tables
  report/                            the study's report, rewritten at the end of every run
  phases/<n>-<name>.json             a phase's record: written last, so it marks the phase done
Each run directory is an ordinary run (babel_jax.runtime.rundir.RunDir).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import io
from babel_jax.data import planted


def log(msg: str) -> None:
  """The study's progress line."""
  io.log(f'experiment: {msg}')


def write_json(path: str, obj: Any) -> None:
  """A study file, written atomically by the first process only."""
  if jax.process_index() == 0:
    io.write_json(path, obj)


# Fields that change how a run is carried out or logged but not its results, and paths that
# follow from the study's layout (so a study directory can be moved and resumed).
_NOT_RESULTS = {('data', 'corpus_dir'), ('data', 'tokenizer_dir'), ('train', 'init_from'),
                ('data', 'mixture'), ('train', 'peak_flops'), ('train', 'log_every'), ('train', 'stop_after'),
                ('eval', 'workers'), ('data', 'read_threads'), ('data', 'prefetch'),
                ('checkpoint', 'async_save'), ('probe', 'follow_poll_s'),
                ('probe', 'follow_timeout_s'), ('eval', 'batch_size'), ('probe', 'batch_size')}


def same_weights(a: dict[str, float], b: dict[str, float], tol: float = 1e-9) -> bool:
  """Whether two mixtures' weights agree up to rounding (then they draw the same data)."""
  return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tol for k in a)


def strategies(cfg) -> list[str]:
  """experiment.strategies with 'original' named as experiment.original's strategy, in order,
  each once."""
  names = [cfg.experiment.original if n == 'original' else n for n in cfg.experiment.strategies]
  return list(dict.fromkeys(names))


def primary(cfg) -> str:
  return cfg.data.languages[0]


def new_languages(cfg) -> list[str]:
  """The languages studied by continual pre-training: real ones and planted controls."""
  return list(cfg.experiment.new_languages or cfg.data.languages[1:])


def controls(cfg) -> list[str]:
  """The planted control languages of the study (experiment.controls), by name."""
  return planted.names(cfg.experiment.controls, primary(cfg))


def real_languages(cfg) -> list[str]:
  """data.languages without the planted ones: what a mixture is made of."""
  return [lang for lang in cfg.data.languages if not planted.parse(lang)]


def seeds(cfg, reference: bool = False) -> range:
  """Run k of a seeded phase uses seed cfg.seed + k; the reference runs may have fewer."""
  if reference and cfg.experiment.reference_seeds:
    return range(min(cfg.experiment.reference_seeds, cfg.experiment.seeds))
  return range(cfg.experiment.seeds)


def with_controls(cfg) -> config_lib.Config:
  """The study config with its controls added as languages: listed in data.languages (weight 0
  in any configured mixture), built by the corpus (corpus.planted), and given id ranges of their
  own (model.vocab_size grows to hold them; tokenizer.vocab_size keeps the real vocabulary)."""
  names = controls(cfg)
  if not names:
    return cfg
  langs = cfg.data.languages
  added = tuple(n for n in names if n not in langs)
  changes = {'data.languages': langs + added}
  for field in ('weights', 'target_tokens'):
    if getattr(cfg.data, field):
      changes[f'data.{field}'] = getattr(cfg.data, field) + (0.0,) * len(added)
  if cfg.experiment.new_languages:
    listed = cfg.experiment.new_languages
    changes['experiment.new_languages'] = (*listed, *(n for n in names if n not in listed))
  made = tuple(dict.fromkeys([*cfg.corpus.planted, *names]))
  base = base_vocab(cfg)
  return config_lib.replace(cfg, **changes, **{
      'corpus.planted': made, 'tokenizer.vocab_size': base,
      'model.vocab_size': max(cfg.model.vocab_size, planted.vocab_size(base, len(made)))})


def steps(cfg, phase: str) -> int:
  if phase == 'regmix':  # RegMix's proxies: half a bake-off run unless set
    return cfg.experiment.regmix_steps or max(1, steps(cfg, 'scratch') // 2)
  return getattr(cfg.experiment, f'{phase}_steps') or cfg.train.steps


def scaled(cfg, scale: float) -> dict[str, object]:
  """The model and steps of a run `scale` times the bake-off's parameters and tokens: d_model
  (and an explicit d_ff) times sqrt(scale), rounded to whole heads; steps times scale."""
  if scale == 1:
    return {'train.steps': steps(cfg, 'scratch')}
  m, grow = cfg.model, scale ** 0.5
  width = max(m.num_heads, round(m.d_model * grow / m.num_heads) * m.num_heads)
  return {'model.d_model': width, 'model.d_ff': round(m.d_ff * grow) if m.d_ff else 0,
          'train.steps': round(steps(cfg, 'scratch') * scale)}


def tokens_per_run(cfg, scale: float = 1.0) -> int:
  """Tokens one bake-off run reads (equal compute: every strategy's runs read this many)."""
  return int(scaled(cfg, scale)['train.steps']) * cfg.train.batch_size * cfg.data.seq_len


def primary_dir(workdir: str) -> str:
  return os.path.join(workdir, 'primary')


def continual_dir(workdir: str, lang: str, k: int) -> str:
  return os.path.join(workdir, 'continual', lang, f'seed{k}')


def reference_dir(workdir: str, lang: str, k: int) -> str:
  return os.path.join(workdir, 'reference', lang, f'seed{k}')


def mixture_path(workdir: str, mixture: str) -> str:
  return os.path.join(workdir, 'mixture', f'{mixture}.json')


def scratch_dir(workdir: str, mixture: str, k: int, scale: float = 1.0) -> str:
  return os.path.join(workdir, 'scratch' if scale == 1 else 'target', mixture, f'seed{k}')


def proxy_dir(workdir: str, i: int) -> str:
  return os.path.join(workdir, 'proxy', f'run{i}')


def phase_path(workdir: str, n: int, name: str) -> str:
  return os.path.join(workdir, 'phases', f'{n}-{name}.json')


def phase_records(workdir: str) -> list[str]:
  folder = os.path.join(workdir, 'phases')
  return sorted(os.path.join(folder, n) for n in os.listdir(folder)) if os.path.isdir(
      folder) else []


def study_file(workdir: str, name: str) -> str:
  """config.json, dynamics.json or comparison.json of the study."""
  return os.path.join(workdir, name)


def report_dir(workdir: str) -> str:
  return os.path.join(workdir, 'report')


def derive(cfg, workdir: str, changes: dict[str, object]) -> config_lib.Config:
  """A run's config: the study's with its corpus and tokenizer paths made absolute, and
  `changes` ('section.field' or 'seed' -> value)."""
  return config_lib.replace(cfg, **{
      'data.corpus_dir': os.path.abspath(data_lib.corpus_dir(cfg, workdir)),
      'data.tokenizer_dir': os.path.abspath(data_lib.tokenizer_dir(cfg, workdir)), **changes})


def _one_hot(cfg, lang: str) -> tuple[float, ...]:
  return tuple(1.0 if x == lang else 0.0 for x in cfg.data.languages)


def base_vocab(cfg) -> int:
  """The real vocabulary: the ids below the planted languages' ranges."""
  return cfg.tokenizer.vocab_size or cfg.model.vocab_size


def primary_config(cfg, workdir: str):
  """Phase 1: the primary language only, on the real vocabulary (planted ids, never a target
  there, would be trained down); the final checkpoint is what continual runs start from, their
  vocabulary grown with fresh rows (train/loop.py `grow_vocabulary`)."""
  return derive(cfg, workdir, {
      'model.vocab_size': base_vocab(cfg),
      'train.steps': steps(cfg, 'primary'), 'data.weights': _one_hot(cfg, primary(cfg)),
      'data.target_tokens': (), 'data.mixture': '', 'checkpoint.log_spaced': 0,
      'checkpoint.keep_every': 0, 'checkpoint.keep_last': 1})


def _dense(cfg, lang: str, k: int, factor: int = 1) -> dict[str, object]:
  """What every run on one new language shares: its data, seed, and dense checkpoints (every
  `every` steps of the continual run, over `factor` times its length)."""
  total = steps(cfg, 'continual')
  every = max(1, total // cfg.experiment.continual_checkpoints)
  return {'seed': cfg.seed + k, 'train.steps': total * factor, 'data.weights': _one_hot(cfg, lang),
          'data.target_tokens': (), 'data.mixture': '', 'checkpoint.every_steps': every,
          'checkpoint.keep_every': every, 'checkpoint.keep_last': 1, 'dynamics.language': lang,
          'eval.languages': (lang,)}


def continual_config(cfg, workdir: str, lang: str, k: int = 0):
  """Phase 2: one new language from the phase-1 parameters, with dense checkpoints; seed k
  draws the data in its own order (the phase-1 model is shared)."""
  return derive(cfg, workdir, {
      **_dense(cfg, lang, k), 'train.lr': cfg.experiment.continual_lr or cfg.train.lr,
      'train.init_from': os.path.abspath(primary_dir(workdir)), 'train.init_step': -1})


def reference_config(cfg, workdir: str, lang: str, k: int = 0):
  """Phase 2: from scratch on one new language alone, experiment.reference_factor times as long
  as a continual run (so it reaches the continual run's loss: effective data transferred is
  then measured, not censored), step 0 included. Twice as many evenly spaced checkpoints as a
  continual run, plus the log-spaced ones: D_E is interpolated in log tokens between them."""
  factor = cfg.experiment.reference_factor
  every = max(1, steps(cfg, 'continual') * factor // (2 * cfg.experiment.continual_checkpoints))
  return derive(cfg, workdir, {**_dense(cfg, lang, k, factor), 'train.init_from': '',
                               'checkpoint.initial': True, 'checkpoint.every_steps': every,
                               'checkpoint.keep_every': every})


def probe_config(run_cfg, study_seed: int, final: bool = False, reference: bool = False):
  """A run's probes on the study's held-out sample (drawn with the study seed, the same for every
  run); `final`: only the last step, without the neuron-deactivation passes; `reference`: only
  the held-out statistics (a reference run's loss curve is all effective transfer reads)."""
  changes = {'seed': study_seed, 'probe.only_heldout': reference}
  if final:
    last = f'{run_cfg.train.steps}:{run_cfg.train.steps}'
    changes.update({'probe.steps': last, 'eval.steps': last, 'probe.deactivate': False})
  return config_lib.replace(run_cfg, **changes)


_FINAL_ONLY = {'train.init_from': '', 'checkpoint.log_spaced': 0, 'checkpoint.keep_every': 0,
               'checkpoint.keep_last': 1}


def scratch_config(cfg, workdir: str, mixture: str, k: int, scale: float = 1.0):
  """Phases 5 and 7: from scratch on a mixture file, seed = study seed + k, at `scale` times the
  bake-off's parameters and tokens; the final step is kept."""
  return derive(cfg, workdir, {
      **_FINAL_ONLY, **scaled(cfg, scale), 'seed': cfg.seed + k, 'data.weights': (),
      'data.target_tokens': (), 'data.mixture': os.path.abspath(mixture_path(workdir, mixture))})


def proxy_config(cfg, workdir: str, weights: dict[str, float], i: int):
  """Phase 4: RegMix's proxy run i, from scratch on `weights` (real languages; the controls get
  none), experiment.regmix_steps long."""
  return derive(cfg, workdir, {
      **_FINAL_ONLY, 'seed': cfg.seed + i, 'train.steps': steps(cfg, 'regmix'),
      'data.weights': tuple(float(weights.get(lang, 0.0)) for lang in cfg.data.languages),
      'data.target_tokens': (), 'data.mixture': ''})


TRAINING = ('seed', 'model', 'data', 'train', 'checkpoint')  # what a training run depends on
MEASURES = (*TRAINING, 'probe', 'eval')  # ... and its probes and evaluation


def fingerprint(*configs, sections: tuple[str, ...] | None = None) -> str:
  """A hash of everything in these configs (their `sections` only) that can change a result;
  plain dicts are hashed whole."""
  def strip(c):
    if not isinstance(c, config_lib.Section):
      return c
    d = c.to_dict()
    if sections:
      d = {k: v for k, v in d.items() if k in sections}
    for section, field in _NOT_RESULTS:
      d.get(section, {}).pop(field, None)
    return d
  text = json.dumps([strip(c) for c in configs], sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
