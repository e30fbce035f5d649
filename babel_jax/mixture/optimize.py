"""From measured dynamics to mixtures: the study's original mixture and the optimized one.

`original` builds the baseline the paper compares against (natural proportions by default).
`optimize` runs Algorithm 1 on each new language's continual pre-training curves (held-out loss
and the performance curve chosen by probe.performance, one point per checkpoint) and returns the
Babel Tower mixture; P* is read at the maximum of the smoothed performance curve (where stage
detection ends Translation) when the curves carry one. A language whose curves cannot support the fit either stops the study
(experiment.fit_fallback = 'raise') or keeps its original share relative to the primary language
('original'); either way the reason is in the spec's provenance and in the report.
"""

from __future__ import annotations

from typing import Any, Sequence

from babel_jax.config import ConfigError
from babel_jax.data.mixture_spec import MixtureSpec
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


def optimize(curves: dict[str, dict[str, Any]], languages: Sequence[str], base: MixtureSpec,
             primary_tokens: float, available: dict[str, float] | None, tail: int,
             fallback: str) -> MixtureSpec:
  """Algorithm 1 over every new language in `curves` ({lang: {'loss', 'performance', 'steps',
  optionally 'smoothed'}}).

  Languages of `languages` without curves, and languages whose fit fails under fallback
  'original', keep their share relative to the primary language from `base`.
  """
  primary = languages[0]
  if base.weights[primary] <= 0:
    raise ConfigError(f'the original mixture gives the primary language {primary!r} no weight')
  fits, p_star, kept = {}, {}, {}
  for lang in languages[1:]:
    if lang not in curves:
      kept[lang] = 'not studied (not in experiment.new_languages)'
      continue
    c = curves[lang]
    try:
      # The best checkpoint is read on the smoothed curve when there is one: the end of
      # Translation as stage detection sees it, not a single noisy point.
      fit = strategies.fit_system_share(c['loss'], c.get('smoothed') or c['performance'], lang,
                                         tail)
    except strategies.MixtureFitError as e:
      if fallback == 'raise':
        raise
      kept[lang] = f'fit failed, original share kept: {e}'
      continue
    fit['best_step'] = int(c['steps'][fit['best_index']])
    fit['performance_source'] = c.get('performance_source')
    fits[lang], p_star[lang] = fit, fit['p_star']
  spec = strategies.babel_tower(primary_tokens, p_star, available, primary, fits)
  target = dict(spec.provenance['target_tokens'])
  for lang in kept:
    share = base.weights[lang] / base.weights[primary]
    target[lang] = primary_tokens * share
  ordered = {lang: target[lang] for lang in languages}
  total = sum(ordered.values())
  provenance = {**spec.provenance, 'target_tokens': ordered, 'kept_original': kept,
                'original': base.provenance.get('strategy'), 'fit_tail': tail,
                'fit_fallback': fallback}
  return MixtureSpec({lang: v / total for lang, v in ordered.items()}, provenance)
