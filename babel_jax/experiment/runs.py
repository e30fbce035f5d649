"""The study's run directories and the config of each run, derived from the one study config.

Every run uses the study's full language list, so language ids, held-out samples and probes line
up across runs; only the mixture weights differ (one-hot for the primary and continual runs).
All runs read the study's corpus and tokenizer.

WORKDIR/ (this module owns these paths)
  config.json                        the study config (as resolved)
  corpus/                            phase 0 (corpus + tokenizer), when data.source = corpus
  primary/                           phase 1: primary-language pre-training
  continual/<lang>/                  phase 2 (+ probes/, eval/ from phase 3, report/)
  dynamics.json, mixture/{original,optimized}.json   phase 4
  scratch/<mixture>/seed<k>/         phase 5 (+ probes/, eval/ of the final step from phase 6)
  comparison.json                    phase 6
  report/                            the study's report, rewritten at the end of every run
  phases/<n>-<name>.json             a phase's record: written last, so it marks the phase done
Each run directory is an ordinary run (babel_jax.runtime.rundir.RunDir).
"""

from __future__ import annotations

import hashlib
import json
import os

import ml_collections

from babel_jax import config as config_lib
from babel_jax import data as data_lib

MIXTURES = ('original', 'optimized')
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


def primary(cfg) -> str:
  return config_lib.languages(cfg)[0]


def new_languages(cfg) -> list[str]:
  return list(config_lib.items(cfg.experiment.new_languages) or config_lib.languages(cfg)[1:])


def steps(cfg, phase: str) -> int:
  return cfg.experiment[f'{phase}_steps'] or cfg.train.steps


def primary_dir(workdir: str) -> str:
  return os.path.join(workdir, 'primary')


def continual_dir(workdir: str, lang: str) -> str:
  return os.path.join(workdir, 'continual', lang)


def mixture_path(workdir: str, mixture: str) -> str:
  return os.path.join(workdir, 'mixture', f'{mixture}.json')


def scratch_dir(workdir: str, mixture: str, k: int) -> str:
  return os.path.join(workdir, 'scratch', mixture, f'seed{k}')


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


def derive(cfg, workdir: str, changes: dict[str, object]) -> ml_collections.ConfigDict:
  out = ml_collections.ConfigDict(cfg.to_dict())
  out.data.corpus_dir = os.path.abspath(data_lib.corpus_dir(cfg, workdir))
  out.data.tokenizer_dir = os.path.abspath(data_lib.tokenizer_dir(cfg, workdir))
  for name, value in changes.items():
    *section, field = name.split('.')
    (out[section[0]] if section else out)[field] = value
  return config_lib.validate(out)


def _one_hot(cfg, lang: str) -> str:
  return ','.join('1' if x == lang else '0' for x in config_lib.languages(cfg))


def primary_config(cfg, workdir: str):
  """Phase 1: the primary language only; the final checkpoint is what continual runs start from."""
  return derive(cfg, workdir, {
      'train.steps': steps(cfg, 'primary'), 'data.weights': _one_hot(cfg, primary(cfg)),
      'data.target_tokens': '', 'data.mixture': '', 'checkpoint.log_spaced': 0,
      'checkpoint.keep_every': 0, 'checkpoint.keep_last': 1})


def continual_config(cfg, workdir: str, lang: str):
  """Phase 2: one new language from the phase-1 parameters, with dense checkpoints."""
  total = steps(cfg, 'continual')
  every = max(1, total // cfg.experiment.continual_checkpoints)
  return derive(cfg, workdir, {
      'train.steps': total, 'train.lr': cfg.experiment.continual_lr or cfg.train.lr,
      'train.init_from': os.path.abspath(primary_dir(workdir)), 'train.init_step': -1,
      'data.weights': _one_hot(cfg, lang), 'data.target_tokens': '', 'data.mixture': '',
      'checkpoint.every_steps': every, 'checkpoint.keep_every': every,
      'checkpoint.keep_last': 1, 'dynamics.language': lang, 'eval.languages': lang})


def scratch_config(cfg, workdir: str, mixture: str, k: int):
  """Phase 5: from scratch on a mixture file, seed = study seed + k; the final step is kept."""
  return derive(cfg, workdir, {
      'seed': cfg.seed + k, 'train.steps': steps(cfg, 'scratch'), 'train.init_from': '',
      'data.weights': '', 'data.target_tokens': '',
      'data.mixture': os.path.abspath(mixture_path(workdir, mixture)),
      'checkpoint.log_spaced': 0, 'checkpoint.keep_every': 0, 'checkpoint.keep_last': 1})


def final_probe_config(run_cfg, study_seed: int):
  """Phase 6: probe and evaluate only a scratch run's final step, on the study's held-out sample
  (seed), without the neuron-deactivation passes (the comparison needs the losses)."""
  out = ml_collections.ConfigDict(run_cfg.to_dict())
  final = f'{run_cfg.train.steps}:{run_cfg.train.steps}'
  out.seed = study_seed
  out.probe.steps = out.eval.steps = final
  out.probe.deactivate = False
  return config_lib.validate(out)


TRAINING = ('seed', 'model', 'data', 'train', 'checkpoint')  # what a training run depends on
MEASURES = (*TRAINING, 'probe', 'eval')  # ... and its probes and evaluation


def fingerprint(*configs, sections: tuple[str, ...] | None = None) -> str:
  """A hash of everything in these configs (their `sections` only) that can change a result;
  plain dicts are hashed whole."""
  def strip(c):
    if not isinstance(c, ml_collections.ConfigDict):
      return c
    d = c.to_dict()
    if sections:
      d = {k: v for k, v in d.items() if k in sections}
    for section, field in _NOT_RESULTS:
      d.get(section, {}).pop(field, None)
    return d
  text = json.dumps([strip(c) for c in configs], sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
