"""Mixture bake-off parts with known answers: UniMax, the RegMix regression, winners, rankings."""

from tests import testing  # noqa: F401  (first: fake devices)

import numpy as np
from absl.testing import absltest

from babel_jax.dynamics import ranking
from babel_jax.errors import ConfigError, MixtureError
from babel_jax.mixture import regmix, strategies


class UniMaxTest(absltest.TestCase):

  def test_hand_computed_with_a_capped_language(self):
    # Budget 600 over a (10 tokens), b (100), c (1000), at most 4 epochs: a takes its cap 40,
    # b and c share the remaining 560 equally (280 each, both under their caps).
    spec = strategies.unimax({'a': 10, 'b': 100, 'c': 1000}, budget=600, max_epochs=4)
    np.testing.assert_allclose([spec.weights[k] for k in 'abc'],
                               [40 / 600, 280 / 600, 280 / 600])
    self.assertEqual(spec.provenance['capped'], ['a'])
    # No cap binds: uniform.
    spec = strategies.unimax({'a': 1000, 'b': 1000}, budget=100, max_epochs=1)
    self.assertEqual(spec.weights, {'a': 0.5, 'b': 0.5})

  def test_impossible_budget_and_bad_values_are_one_line(self):
    with self.assertRaisesRegex(MixtureError, r'more than 4 epochs of every language \(4440\)'):
      strategies.unimax({'a': 10, 'b': 100, 'c': 1000}, budget=5000, max_epochs=4)
    with self.assertRaisesRegex(ConfigError, 'must be > 0'):
      strategies.unimax({'a': 10}, budget=0, max_epochs=4)


class RegMixTest(absltest.TestCase):

  def test_regression_recovers_the_optimum_of_a_known_metric(self):
    natural = {'python': 0.5, 'php': 0.3, 'go': 0.2}
    optimum = np.array([0.2, 0.5, 0.3])
    mixtures = regmix.proxy_mixtures(natural, 96, seed=0, concentration=0.5)
    metric = [float(np.sum((np.array(list(w.values())) - optimum) ** 2)) for w in mixtures]
    reg = regmix.fit(mixtures, metric, seed=0)
    self.assertGreater(reg.cv_r2, 0.5)
    self.assertGreater(reg.cv_spearman, 0.8)
    spec = regmix.best(reg, natural, seed=0, candidates=20_000)
    got = np.array([spec.weights[k] for k in natural])
    # Trees predict a piecewise-constant surface: within 0.1 of the optimum on every weight, while
    # the natural mixture is 0.3 away on the first.
    self.assertLess(np.abs(got - optimum).max(), 0.1, got)
    self.assertEqual(spec.provenance['strategy'], 'regmix')

  def test_a_metric_of_pure_noise_is_reported_as_unpredictable(self):
    natural = {'python': 0.5, 'php': 0.5}
    mixtures = regmix.proxy_mixtures(natural, 40, seed=1)
    noise = np.random.default_rng(2).normal(size=40).tolist()
    reg = regmix.fit(mixtures, noise, seed=0)
    self.assertLess(reg.cv_r2, 0.2)

  def test_too_few_runs_is_one_line(self):
    with self.assertRaisesRegex(MixtureError, 'at least 6 are needed'):
      regmix.fit([{'a': 1.0}] * 3, [1.0, 2.0, 3.0])


class RankingTest(absltest.TestCase):

  def test_decision_accuracy_and_spearman_on_hand_made_rankings(self):
    small = {'a': 1.0, 'b': 2.0, 'c': 3.0}
    self.assertEqual(ranking.decision_accuracy(small, small), 1.0)
    self.assertEqual(ranking.spearman(small, small), 1.0)
    swapped = {'a': 1.0, 'b': 3.0, 'c': 2.0}  # (a,b) and (a,c) agree, (b,c) does not
    self.assertAlmostEqual(ranking.decision_accuracy(small, swapped), 2 / 3)
    self.assertAlmostEqual(ranking.spearman(small, swapped), 0.5)
    reversed_ = {'a': 3.0, 'b': 2.0, 'c': 1.0}
    self.assertEqual(ranking.decision_accuracy(small, reversed_), 0.0)
    self.assertEqual(ranking.spearman(small, reversed_), -1.0)
    # A target tie is left out; a small-scale tie counts one half.
    self.assertEqual(ranking.decision_accuracy(small, {'a': 1.0, 'b': 1.0, 'c': 3.0}), 1.0)
    self.assertEqual(ranking.decision_accuracy({'a': 1.0, 'b': 1.0}, {'a': 1.0, 'b': 2.0}), 0.5)

  def test_agreement_interval_over_seeds(self):
    small = {'a': [1.0, 1.1, 0.9], 'b': [2.0, 2.1, 1.9], 'c': [3.0, 3.1, 2.9]}
    target = {'a': [0.5, 0.6, 0.4], 'b': [1.5, 1.4, 1.6], 'c': [2.5, 2.6, 2.4]}
    out = ranking.agreement(small, target, boots=300)
    self.assertEqual((out['accuracy']['low'], out['accuracy']['high']), (1.0, 1.0))
    # Overlapping seeds at the target scale: the interval must widen below 1.
    noisy = {'a': [0.5, 2.6, 1.4], 'b': [1.5, 0.4, 2.6], 'c': [2.5, 1.6, 0.4]}
    self.assertLess(ranking.agreement(small, noisy, boots=300)['accuracy']['low'], 0.5)

  def test_winner_only_when_it_beats_every_other_after_holm(self):
    clear = {'natural': [3.0, 3.1, 2.9, 3.05], 'unimax': [2.0, 2.1, 1.9, 2.05],
             'babel': [2.5, 2.6, 2.4, 2.55]}
    self.assertEqual(ranking.winner(clear)['winner'], 'unimax')
    tied = {'natural': [2.0, 2.2, 1.8, 2.1], 'unimax': [2.05, 1.85, 2.15, 1.95],
            'babel': [3.0, 3.1, 2.9, 3.05]}  # natural and unimax do not separate
    out = ranking.winner(tied)
    self.assertIsNone(out['winner'])
    self.assertIn('no clear winner', out['verdict'])
    self.assertEqual(ranking.winner(clear, lower_is_better=False)['winner'], 'natural')


if __name__ == '__main__':
  absltest.main()
