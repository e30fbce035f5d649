"""From measured dynamics to mixtures: the study's original mixture and the optimized one.

`original` builds the baseline the paper compares against (natural proportions by default).
`optimize` is Algorithm 1: for every new language, P* from its Eq. 1 fits (babel_jax.dynamics,
the same fits the reports print, one per seed) sets its tokens relative to the primary language's
budget. P* needs a majority: more than half of the seeds' fits must give one, and P* is then the
mean over those seeds. A language without a majority either stops the study
(experiment.fit_fallback = 'raise') or keeps its original share relative to the primary language
('original'); either way the provenance says, per language, which seeds gave P* (and their
values) and why each other seed did not.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.data.mixture_spec import MixtureSpec
from babel_jax.dynamics.eq1 import Eq1Fit
from babel_jax.errors import ConfigError, FitError
from babel_jax.mixture import strategies


def original(kind: str, languages: Sequence[str], tokens: dict[str, float] | None,
             temperature: float, configured: MixtureSpec | None = None) -> MixtureSpec:
  """The baseline mixture: 'natural' (tokens available), 'uniform', 'temperature' or 'config'."""
  if kind in ('natural', 'temperature') and not tokens:
    raise ConfigError(f'experiment.original={kind!r} needs the corpus token counts '
                      '(data.source = corpus with a trained tokenizer); use "uniform" or "config"')
  if kind == 'natural':
    return strategies.natural({lang: tokens[lang] for lang in languages})
  if kind == 'temperature':
    return strategies.temperature({lang: tokens[lang] for lang in languages}, temperature)
  if kind == 'uniform':
    return strategies.uniform(languages)
  if kind == 'config':
    if configured is None:
      raise ConfigError('experiment.original="config" needs data.weights, data.target_tokens or '
                        'data.mixture')
    return MixtureSpec(dict(configured.weights),
                       {**configured.provenance, 'strategy': 'config'})
  raise ConfigError(f'experiment.original={kind!r}: expected natural, uniform, temperature or '
                    'config')


def _fit_record(seed: int, fit: Eq1Fit) -> dict[str, Any]:
  return {'seed': seed, 'alpha': fit.alpha, 'beta': fit.beta, 'rule': fit.rule,
          'l_star': fit.l_star, 'best_index': fit.best_index, 'best_step': fit.best_step,
          'p_star': fit.p_star, 'problem': fit.problem}


def has_majority(given: int, seeds: int) -> bool:
  """More than half of the seeds gave P*: one lucky seed does not set a language's tokens."""
  return 2 * given > seeds


def seed_record(fits: Sequence[Eq1Fit]) -> dict[str, Any]:
  """Which seeds (index k) gave P* and their values, why each other seed did not, and P* (the
  mean over the seeds that gave one) when they are a majority, else None."""
  given = {str(k): f.p_star for k, f in enumerate(fits) if f.problem is None}
  majority = has_majority(len(given), len(fits))
  return {'p_star': float(np.mean(list(given.values()))) if majority else None,
          'majority': majority, 'seeds_with_p_star': len(given), 'seed_count': len(fits),
          'p_star_by_seed': given,
          'no_p_star': {str(k): f.problem for k, f in enumerate(fits) if f.problem is not None},
          'seeds': [_fit_record(k, f) for k, f in enumerate(fits)]}


def no_majority_reason(lang: str, record: dict[str, Any]) -> str:
  """Why a language gets no P*, naming every seed's reason."""
  given = ', '.join(f'seed {k}: {p:.3f}' for k, p in record['p_star_by_seed'].items())
  why = '; '.join(f'seed {k}: {p}' for k, p in record['no_p_star'].items())
  return (f'{lang}: P* from {record["seeds_with_p_star"]} of {record["seed_count"]} seeds, '
          f'more than half needed ({given or "none"}); no P*: {why}')


def optimize(fits: dict[str, Sequence[Eq1Fit]], languages: Sequence[str], base: MixtureSpec,
             primary_tokens: float, available: dict[str, float] | None,
             fallback: str) -> MixtureSpec:
  """Algorithm 1 over every new language with Eq. 1 fits (one per seed, in seed order) in `fits`.

  Languages of `languages` without fits, and languages where no majority of the seeds gives a
  P* under fallback 'original', keep their share relative to the primary language from `base`.
  """
  primary = languages[0]
  if base.weights[primary] <= 0:
    raise ConfigError(f'the original mixture gives the primary language {primary!r} no weight')
  records, p_star, kept = {}, {}, {}
  for lang in languages[1:]:
    if lang not in fits:
      kept[lang] = 'not studied (not in experiment.new_languages)'
      continue
    records[lang] = seed_record(fits[lang])
    if not records[lang]['majority']:
      reason = no_majority_reason(lang, records[lang])
      if fallback == 'raise':
        raise FitError(f'{reason} (experiment.fit_fallback=raise)')
      kept[lang] = f'original share kept: {reason}'
      continue
    p_star[lang] = records[lang]['p_star']
  spec = strategies.babel_tower(primary_tokens, p_star, available, primary, records)
  target = dict(spec.provenance['target_tokens'])
  for lang in kept:
    target[lang] = primary_tokens * base.weights[lang] / base.weights[primary]
  ordered = {lang: target[lang] for lang in languages}
  total = sum(ordered.values())
  provenance = {**spec.provenance, 'target_tokens': ordered, 'kept_original': kept,
                'original': base.provenance.get('strategy'), 'fit_fallback': fallback}
  return MixtureSpec({lang: v / total for lang, v in ordered.items()}, provenance)
