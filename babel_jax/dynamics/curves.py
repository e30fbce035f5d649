"""Curves: the typed hand-off from measurement to interpretation, one run and new language.

`load(run)` reads what the probes and the evaluation wrote into a run directory (probes/<step>.json,
eval/<step>/per_problem.json, the run's config.json and mixture.json) and returns per-checkpoint
arrays: the held-out loss of every language, the performance curve of the new language L (with
its source and why it was chosen), the logit lens's working language per layer, the counts
of transferring neurons, and the planted knowledge in L and in the primary language. Everything
downstream (stages, Eq. 1, reports, Algorithm 1) reads these.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.errors import ConfigError, RunError
from babel_jax.probes import result as result_lib
from babel_jax.probes.result import ProbeResult
from babel_jax.runtime.rundir import RunDir

PERFORMANCE_SOURCES = ('eval', 'solutions', 'lens', 'loss')  # the order 'auto' tries them in
# Performance curves that only dynamics.performance names ('auto' never picks them).
NAMED_ONLY = ('knowledge',)


@dataclasses.dataclass(frozen=True)
class Performance:
  """The new language's performance per checkpoint (higher is better)."""
  source: str  # one of PERFORMANCE_SOURCES or NAMED_ONLY
  name: str  # what it measures, in words
  values: np.ndarray  # [C]
  why: str  # why this source (dynamics.performance, or what 'auto' skipped)


@dataclasses.dataclass(frozen=True)
class Lens:
  """The working language of L per checkpoint and layer (logit lens): on L's probe-set prompts
  for a real language, on every held-out position for a planted one (the aligned lens, read
  within id blocks so that block bias does not count; docs/method.md)."""
  source: str  # 'probe set' or 'aligned'
  # probe set: share of prompts whose top-1 token is the primary identifier's; aligned: share of
  # positions whose mirrored primary id is top-1 within the primary block
  primary_top1_CxN: np.ndarray
  target_top1_CxN: np.ndarray  # ... the L identifier's; aligned: the L id's, within its block
  # The working-language reading (1 = the primary): probe set p(primary) / (p(primary) + p(L));
  # aligned, the within-block share q(primary) / (q(primary) + q(L))
  primary_mass_CxN: np.ndarray
  final_target_prob_C: np.ndarray  # the last layer's probability of the L identifier / next L id
  # aligned only: the primary block's share of the two blocks' mass, the unembedding's block bias
  block_mass_CxN: np.ndarray | None = None

  @property
  def primary_share_C(self) -> np.ndarray:
    """The working-language reading, averaged over layers."""
    return self.primary_mass_CxN.mean(axis=1)


@dataclasses.dataclass(frozen=True)
class Knowledge:
  """Planted knowledge per checkpoint (probes/knowledge.py): each fact's per-token body loss
  given its signature, taught facts and their untaught twins (column k of the untaught arrays is
  the twin of column k of the taught), in L and in the primary language (the facts' language)."""
  language: str  # L
  primary: str
  names: tuple[str, ...]  # L's taught facts, in column order
  taught_CxJ: np.ndarray
  untaught_CxJ: np.ndarray
  primary_names: tuple[str, ...] = ()
  primary_taught_CxJ: np.ndarray | None = None  # None: no primary reading at every checkpoint
  primary_untaught_CxJ: np.ndarray | None = None

  @property
  def transferred_CxJ(self) -> np.ndarray:
    """Per checkpoint and fact: untaught twin's loss - taught fact's loss in L."""
    return self.untaught_CxJ - self.taught_CxJ

  @property
  def transferred_C(self) -> np.ndarray:
    """Knowledge transferred to L: mean untaught loss - mean taught loss (higher: more)."""
    return self.untaught_CxJ.mean(axis=1) - self.taught_CxJ.mean(axis=1)

  @property
  def retention_CxJ(self) -> np.ndarray | None:
    if self.primary_taught_CxJ is None:
      return None
    return self.primary_untaught_CxJ - self.primary_taught_CxJ

  @property
  def retention_C(self) -> np.ndarray | None:
    """The same reading in the primary language: what it retains of the facts it was taught."""
    if self.primary_taught_CxJ is None:
      return None
    return self.primary_untaught_CxJ.mean(axis=1) - self.primary_taught_CxJ.mean(axis=1)


@dataclasses.dataclass(frozen=True)
class Curves:
  """One run's measured curves, for its new language `language`."""
  run: str  # the run directory
  language: str  # the new language L
  primary: str
  languages: tuple[str, ...]
  steps: np.ndarray  # [C] checkpoint steps
  tokens: np.ndarray  # [C] training tokens seen at each checkpoint
  heldout_loss: dict[str, np.ndarray]  # language -> [C]
  performance: Performance
  transferring_neurons: np.ndarray  # [C] neurons of both the primary and L (LAPE)
  lens: Lens | None  # None without a tokenizer and probe-set prompts, or planted text, for L
  solved: tuple[frozenset[str], ...] | None  # HumanEval problems solved in L per checkpoint
  solution_loss: np.ndarray | None  # [C] loss of hand-written correct solutions in L
  knowledge: Knowledge | None = None  # planted knowledge in L and the primary, None without

  @property
  def loss(self) -> np.ndarray:
    """The held-out loss of L."""
    return self.heldout_loss[self.language]


def target_language(saved: dict[str, Any], mixture: dict[str, Any] | None,
                    configured: str = '') -> str | None:
  """`configured` if set, else the non-primary language with the largest mixture weight."""
  langs = config_lib.items(saved['data']['languages'])
  if configured:
    if configured not in langs:
      raise ConfigError(f'dynamics.language={configured!r} is not a language of the run '
                        f'({list(langs)})')
    return configured
  if len(langs) < 2:
    return None
  weights = (mixture or {}).get('weights') or {lang: 1.0 for lang in langs}
  return max(langs[1:], key=lambda lang: (weights.get(lang, 0.0), -langs.index(lang)))


def choose_performance(choice: str, results: list[ProbeResult], lens: Lens | None,
                       solved, target: str, solution_loss=None,
                       knowledge: Knowledge | None = None) -> Performance:
  """The performance curve `choice` names; 'auto' takes the first of PERFORMANCE_SOURCES that
  every checkpoint has and that is not flat, and says what it skipped ('knowledge', the planted
  knowledge transferred to L, only when named)."""
  candidates = {}
  if solved is not None:
    candidates['eval'] = (f'HumanEval problems solved in {target}', [len(x) for x in solved])
  if solution_loss is not None:
    candidates['solutions'] = (f'negative loss of correct {target} HumanEval solutions',
                               (-np.asarray(solution_loss)).tolist())
  if lens is not None:
    what = ('the {} identifier (logit lens)' if lens.source == 'probe set' else
            'the next {} token (aligned lens)').format(target)
    candidates['lens'] = (f'final-layer probability of {what}', lens.final_target_prob_C.tolist())
  if knowledge is not None:
    candidates['knowledge'] = (f'knowledge transferred to {target} (untaught twin minus taught '
                               'body loss of the planted facts)', knowledge.transferred_C.tolist())
  candidates['loss'] = (f'negative held-out loss of {target}',
                        [-float(r.loss[target]) for r in results])
  if choice != 'auto':
    if choice not in candidates:
      raise ConfigError(
          f'dynamics.performance={choice!r} but the checkpoints of {target} have no such results '
          f'(have: {sorted(candidates)}); run the evaluation / use a corpus with probe prompts '
          '(knowledge: a corpus with facts, corpus.facts, probed with probe.knowledge)')
    name, values = candidates[choice]
    return Performance(choice, name, np.asarray(values, np.float64), 'dynamics.performance')
  skipped = []
  for key in PERFORMANCE_SOURCES:
    if key not in candidates:
      skipped.append(f'{key}: no results')
      continue
    name, values = candidates[key]
    if key != 'loss' and np.ptp(values) == 0:
      skipped.append(f'{key}: flat at {values[0]:g}')
      continue
    why = 'auto' + (f' (skipped {"; ".join(skipped)})' if skipped else '')
    return Performance(key, name, np.asarray(values, np.float64), why)
  raise AssertionError('unreachable: the loss curve always exists')


def _lens(results: list[ProbeResult], target: str) -> Lens | None:
  """The probe-set lens of `target` if every checkpoint has it, else the aligned lens if every
  one has that, else None."""
  for key, source in (('lens', 'probe set'), ('aligned_lens', 'aligned')):
    if results and all(target in getattr(r, key) for r in results):
      rows = [getattr(r, key)[target] for r in results]
      aligned = key == 'aligned_lens'
      stack = lambda per_layer: np.asarray(per_layer, np.float64)  # noqa: E731
      return Lens(
          source=source,
          primary_top1_CxN=stack([x.primary_top1_within if aligned else x.primary_top1
                                 for x in rows]),
          target_top1_CxN=stack([x.target_top1_within if aligned else x.target_top1
                                 for x in rows]),
          primary_mass_CxN=stack([x.primary_share for x in rows]),
          final_target_prob_C=stack([x.target_prob[-1] for x in rows]),
          block_mass_CxN=stack([x.primary_block_share for x in rows]) if aligned else None)
  return None


def _knowledge(results: list[ProbeResult], target: str, primary: str) -> Knowledge | None:
  """L's planted-knowledge readings if every checkpoint has one over the same facts (else None),
  with the primary's beside them where every checkpoint has those."""
  def stacked(lang):
    if not results or not all(lang in r.knowledge for r in results):
      return None
    rows = [r.knowledge[lang] for r in results]
    if len({(x.taught_names, x.untaught_names) for x in rows}) != 1 or not rows[0].taught_names:
      return None  # other facts at some checkpoint: no curve
    return (rows[0].taught_names, np.asarray([x.taught_loss for x in rows], np.float64),
            np.asarray([x.untaught_loss for x in rows], np.float64))
  own = stacked(target)
  if own is None:
    return None
  base = stacked(primary) if primary != target else None
  return Knowledge(target, primary, *own, *(base or ((), None, None)))


def _solved(run: RunDir, steps: list[int], target: str) -> tuple[frozenset[str], ...] | None:
  per_step = [run.per_problem(s) for s in steps]
  if not per_step or any(p is None for p in per_step):
    return None
  return tuple(frozenset(t for t, ok in p.get(target, {}).items() if ok) for p in per_step)


def load(run: RunDir | str, language: str = '', performance: str = 'auto') -> Curves:
  """The curves of a probed run for its new language (`language`, default: see
  `target_language`), with the performance curve `performance` chooses."""
  run = RunDir(run) if isinstance(run, str) else run
  saved = run.config()
  if saved is None:
    raise RunError(f'{run.path} is not a run directory (no config.json)')
  results = result_lib.load_all(run)
  if not results:
    raise RunError(f'no probe results in {run.probes_dir}; run --mode probe on {run.path} first')
  mixture = io.read_json(run.mixture_path) if os.path.exists(run.mixture_path) else None
  target = target_language(saved, mixture, language)
  if target is None:
    raise RunError(f'{run.path} trains on one language only; there is no new language to study')
  langs = config_lib.items(saved['data']['languages'])
  for r in results:
    missing = [lang for lang in langs if lang not in r.loss]
    if missing:
      raise RunError(f'{run.probes_dir}/{r.step}.json has no held-out loss for {missing}: it was '
                     f'probed with languages {list(r.loss)}, not the run\'s data.languages '
                     f'{list(langs)} (its config.json)')
  steps = [r.step for r in results]
  lens = _lens(results, target)
  solved = _solved(run, steps, target)
  solution_loss = None
  if results and all(target in r.solution_loss for r in results):
    solution_loss = np.asarray([r.solution_loss[target].loss for r in results])
  knowledge = _knowledge(results, target, langs[0])
  per_step = saved['train']['batch_size'] * saved['data']['seq_len']
  return Curves(
      run=run.path, language=target, primary=langs[0], languages=langs,
      steps=np.asarray(steps), tokens=np.asarray(steps, np.float64) * per_step,
      heldout_loss={lang: np.asarray([r.loss[lang] for r in results], np.float64)
                    for lang in langs},
      performance=choose_performance(performance, results, lens, solved, target,
                                     solution_loss, knowledge),
      transferring_neurons=np.asarray(
          [r.neurons.transferring_total(target) for r in results]),
      lens=lens, solved=solved, solution_loss=solution_loss, knowledge=knowledge)
