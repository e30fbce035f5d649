"""From measured dynamics to mixtures: the study's original mixture and the optimized one.

`original` builds the baseline the paper compares against (natural proportions by default).
`optimize` is Algorithm 1: for every new language, P* from its Eq. 1 fits (babel_jax.dynamics,
the same fits the reports print; the mean over the seeds whose curves give one) sets its tokens
relative to the primary language's budget. A language whose curves give no P* in any seed either
stops the study (experiment.fit_fallback = 'raise') or keeps its original share relative to the
primary language ('original'); either way the reason is in the spec's provenance and the report.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from babel_jax.dynamics.eq1 import Eq1Fit
from babel_jax.errors import ConfigError, FitError
from babel_jax.mixture import strategies
from babel_jax.mixture.spec import MixtureSpec


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


def _fit_record(fit: Eq1Fit) -> dict[str, Any]:
  return {'alpha': fit.alpha, 'beta': fit.beta, 'rule': fit.rule, 'l_star': fit.l_star,
          'best_index': fit.best_index, 'best_step': fit.best_step, 'p_star': fit.p_star}


def optimize(fits: dict[str, Sequence[Eq1Fit]], languages: Sequence[str], base: MixtureSpec,
             primary_tokens: float, available: dict[str, float] | None,
             fallback: str) -> MixtureSpec:
  """Algorithm 1 over every new language with Eq. 1 fits (one per seed) in `fits`.

  Languages of `languages` without fits, and languages none of whose fits has a P* under
  fallback 'original', keep their share relative to the primary language from `base`.
  """
  primary = languages[0]
  if base.weights[primary] <= 0:
    raise ConfigError(f'the original mixture gives the primary language {primary!r} no weight')
  records, p_star, kept = {}, {}, {}
  for lang in languages[1:]:
    if lang not in fits:
      kept[lang] = 'not studied (not in experiment.new_languages)'
      continue
    good = [f for f in fits[lang] if f.problem is None]
    if not good:
      problem = fits[lang][0].problem
      if fallback == 'raise':
        raise FitError(f'{lang}: {problem} (experiment.fit_fallback=raise)')
      kept[lang] = f'fit failed, original share kept: {lang}: {problem}'
      continue
    p_star[lang] = float(np.mean([f.p_star for f in good]))
    records[lang] = {'p_star': p_star[lang], 'seeds_with_p_star': len(good),
                     'seeds': [_fit_record(f) for f in fits[lang]]}
  spec = strategies.babel_tower(primary_tokens, p_star, available, primary, records)
  target = dict(spec.provenance['target_tokens'])
  for lang in kept:
    target[lang] = primary_tokens * base.weights[lang] / base.weights[primary]
  ordered = {lang: target[lang] for lang in languages}
  total = sum(ordered.values())
  provenance = {**spec.provenance, 'target_tokens': ordered, 'kept_original': kept,
                'original': base.provenance.get('strategy'), 'fit_fallback': fallback}
  return MixtureSpec({lang: v / total for lang, v in ordered.items()}, provenance)
