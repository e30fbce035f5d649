"""A RegMix-style mixture (Liu et al. 2024): proxy runs on random mixtures, a regression from
mixture weights to the target metric, and the mixture the regression predicts best.

`proxy_mixtures` draws the proxy runs' weights (Dirichlet around the natural shares, as RegMix);
the caller trains one small run per mixture and measures the target metric (lower is better).
`fit` regresses the metric on the weights with scikit-learn's gradient boosting (RegMix uses
LightGBM's) and reports its cross-validated quality, so a user sees whether the regression can
be trusted; `best` scores many sampled candidates and averages the top ones' weights (RegMix's
way of smoothing a noisy argmin).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from scipy import stats as scipy_stats
from sklearn import ensemble, model_selection

from babel_jax.errors import MixtureError
from babel_jax.data.mixture_spec import MixtureSpec

MIN_RUNS = 6  # fewer proxy runs than this cannot be cross-validated


def proxy_mixtures(natural: dict[str, float], n: int, seed: int,
                   concentration: float = 1.0) -> list[dict[str, float]]:
  """`n` weight vectors, Dirichlet with mean at the natural shares (concentration x G)."""
  langs = list(natural)
  total = sum(natural.values())
  alpha = np.maximum(np.array([natural[k] / total for k in langs]) * concentration * len(langs),
                     1e-3)
  draws = np.random.default_rng(seed).dirichlet(alpha, size=n)
  return [dict(zip(langs, row.tolist())) for row in draws]


@dataclasses.dataclass(frozen=True)
class Regression:
  languages: tuple[str, ...]
  model: Any  # a fitted scikit-learn regressor
  cv_r2: float  # mean R^2 over the folds
  cv_spearman: float  # rank agreement of out-of-fold predictions with the measured metric
  runs: int


def _model(seed: int):
  # Small-sample settings: shallow trees, leaves of 2, shrinkage; deterministic given the seed.
  return ensemble.GradientBoostingRegressor(n_estimators=300, max_depth=2, learning_rate=0.05,
                                            min_samples_leaf=2, subsample=0.8, random_state=seed)


def fit(weights: Sequence[dict[str, float]], metric: Sequence[float], seed: int = 0) -> Regression:
  """Gradient boosting from weights to metric, with k-fold cross-validated R^2 and Spearman."""
  if len(weights) != len(metric):
    raise MixtureError(f'regmix: {len(weights)} mixtures but {len(metric)} measurements')
  if len(weights) < MIN_RUNS:
    raise MixtureError(f'regmix: {len(weights)} proxy runs; at least {MIN_RUNS} are needed to '
                       'fit and cross-validate the regression (experiment.regmix_runs)')
  langs = tuple(weights[0])
  x = np.array([[w[k] for k in langs] for w in weights])
  y = np.asarray(metric, np.float64)
  folds = model_selection.KFold(n_splits=min(5, len(y)), shuffle=True, random_state=seed)
  predicted = model_selection.cross_val_predict(_model(seed), x, y, cv=folds)
  r2 = model_selection.cross_val_score(_model(seed), x, y, cv=folds, scoring='r2')
  rho = scipy_stats.spearmanr(predicted, y).statistic
  return Regression(langs, _model(seed).fit(x, y), float(np.mean(r2)), float(rho), len(y))


def best(reg: Regression, natural: dict[str, float], seed: int = 0, candidates: int = 100_000,
         top: int = 100) -> MixtureSpec:
  """The mean weights of the `top` candidates (sampled like the proxies, and more widely) with
  the lowest predicted metric."""
  rng = np.random.default_rng(seed)
  base = np.array([natural[k] for k in reg.languages], np.float64)
  base = base / base.sum()
  pools = [rng.dirichlet(np.maximum(base * c * len(base), 1e-3), size=candidates // 2)
           for c in (1.0, 0.3)]
  x = np.concatenate(pools)
  pred = reg.model.predict(x)
  chosen = x[np.argsort(pred)[:top]].mean(axis=0)
  weights = dict(zip(reg.languages, (chosen / chosen.sum()).tolist()))
  return MixtureSpec(weights, {'strategy': 'regmix', 'proxy_runs': reg.runs,
                               'cv_r2': reg.cv_r2, 'cv_spearman': reg.cv_spearman,
                               'predicted': float(reg.model.predict(chosen[None])[0]),
                               'candidates': candidates, 'top': top})
