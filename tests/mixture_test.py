"""Mixture strategies: Algorithm 1 on fits with known answers; every spec feeds the pipeline."""

from tests import testing  # noqa: F401  (first: fake devices)

import numpy as np
from absl.testing import absltest

from babel_jax.data import pipeline
from babel_jax.dynamics import eq1, stages
from babel_jax.errors import ConfigError, FitError
from babel_jax.mixture import optimize, strategies
from tests.dynamics_test import _fit_curves


def _fit(p_star, spacing=10, flat=False):
  """The Eq. 1 fit of curves whose performance peaks where P(loss) = p_star."""
  steps, loss, perf = _fit_curves(p_star)
  steps = steps * spacing
  if flat:
    perf = np.zeros_like(perf)
  st = stages.detect(steps, perf, 1, 0.1)
  return eq1.fit(steps, loss, st, eq1.Eq1Settings(fit_tail=3, smooth_window=1))


class MixtureTest(absltest.TestCase):

  def test_paper_check(self):
    # The paper (docs/method.md): eta_python = 11B gives PHP 5B at P* = 0.69, C# 10B at P* = 0.52.
    spec = strategies.babel_tower(11e9, {'php': 0.69, 'csharp': 0.52})
    t = spec.provenance['target_tokens']
    self.assertAlmostEqual(t['php'] / 1e9, 4.94, places=2)
    self.assertAlmostEqual(t['csharp'] / 1e9, 10.15, places=2)
    self.assertAlmostEqual(sum(spec.weights.values()), 1.0)
    capped = strategies.babel_tower(11e9, {'php': 0.69}, available={'php': 2e9})
    self.assertEqual(capped.provenance['target_tokens']['php'], 2e9)
    self.assertIn('php', capped.provenance['capped'])

  def test_p_star_outside_the_unit_interval_is_refused(self):
    with self.assertRaisesRegex(FitError, 'outside'):
      strategies.babel_tower(1e9, {'go': 1.0})

  def test_baselines_and_pipeline_accepts_every_strategy(self):
    tokens = {'python': 3e6, 'cpp': 1e6, 'javascript': 2e6}
    specs = [strategies.natural(tokens), strategies.uniform(list(tokens)),
             strategies.temperature(tokens, 2.0),
             strategies.babel_tower(3e6, {'cpp': 0.6, 'javascript': 0.4}),
             optimize.optimize({'cpp': [_fit(0.6)]}, ('python', 'cpp', 'javascript'),
                               strategies.natural(tokens), 3e6, tokens, 'original')]
    self.assertAlmostEqual(specs[0].weights['python'], 0.5)
    self.assertAlmostEqual(specs[1].weights['cpp'], 1 / 3)
    t = np.sqrt(np.array([3, 1, 2]) / 6)
    self.assertAlmostEqual(specs[2].weights['cpp'], t[1] / t.sum())
    corpus_dir, tok_dir = testing.small_corpus()
    langs = tuple(testing.SMALL_LANGUAGES.split(','))
    for spec in specs:
      source = pipeline.CorpusSource(corpus_dir, tok_dir, langs, spec, 8, 64, 0, read_threads=1)
      counts = np.zeros(len(langs))
      for _ in range(40):
        b = next(source)
        counts += [(b['lang_ids'] == i).sum() for i in range(len(langs))]
      source.close()
      np.testing.assert_allclose(counts / counts.sum(), spec.vector(langs), atol=0.01)

  def test_optimize_fits_each_language_and_reports_fallbacks(self):
    langs = ('python', 'php', 'csharp', 'go')
    base = strategies.uniform(langs)
    flat = _fit(0.69, flat=True)  # flat: no peak to fit
    fits = {'php': [_fit(0.69)], 'csharp': [_fit(0.52), flat, _fit(0.52)], 'go': [flat] * 2}
    spec = optimize.optimize(fits, langs, base, 11e9, None, 'original')
    t = spec.provenance['target_tokens']
    self.assertAlmostEqual(t['php'] / 1e9, 4.94, places=2)  # the paper's check, end to end
    self.assertAlmostEqual(t['csharp'] / 1e9, 10.15, places=2)  # 2 of 3 seeds: a majority
    self.assertEqual(t['go'], 11e9)  # uniform original: go keeps python's share
    self.assertIn('no clear performance peak', spec.provenance['kept_original']['go'])
    php = spec.provenance['fits']['php']['seeds'][0]
    self.assertEqual(php['best_step'], 10 * php['best_index'])
    csharp = spec.provenance['fits']['csharp']
    self.assertEqual((csharp['seeds_with_p_star'], csharp['seed_count']), (2, 3))
    self.assertEqual(list(csharp['p_star_by_seed']), ['0', '2'])
    self.assertIn('no clear performance peak', csharp['no_p_star']['1'])
    self.assertAlmostEqual(sum(spec.weights.values()), 1.0)
    self.assertEqual(list(spec.weights), list(langs))
    self.assertEqual(php['alpha'], fits['php'][0].alpha)
    with self.assertRaisesRegex(FitError, 'go: P\\* from 0 of 2 seeds'):
      optimize.optimize(fits, langs, base, 11e9, None, 'raise')

  def test_p_star_needs_a_majority_of_seeds(self):
    langs = ('python', 'go', 'php')
    base = strategies.uniform(langs)
    flat = _fit(0.5, flat=True)
    # One seed of two is no majority: the original share stays, and every seed says why.
    fits = {'go': [_fit(0.6), flat], 'php': [_fit(0.6), _fit(0.4), flat]}
    spec = optimize.optimize(fits, langs, base, 11e9, None, 'original')
    t, kept = spec.provenance['target_tokens'], spec.provenance['kept_original']
    self.assertEqual(t['go'], 11e9)
    self.assertIn('go: P* from 1 of 2 seeds, more than half needed (seed 0: 0.600)', kept['go'])
    self.assertIn('seed 1: no clear performance peak', kept['go'])
    go = spec.provenance['fits']['go']
    self.assertIsNone(go['p_star'])
    self.assertFalse(go['majority'])
    self.assertEqual(go['p_star_by_seed'], {'0': fits['go'][0].p_star})
    # Two of three: P* is the mean over the seeds that give one, (0.6 + 0.4) / 2.
    self.assertAlmostEqual(spec.provenance['fits']['php']['p_star'], 0.5, places=6)
    self.assertAlmostEqual(t['php'], 11e9 * (1 - 0.5) / 0.5, delta=1e3)
    self.assertNotIn('php', kept)
    with self.assertRaisesRegex(FitError, 'go: P\\* from 1 of 2 seeds.*seed 1: no clear'):
      optimize.optimize(fits, langs, base, 11e9, None, 'raise')
    self.assertTrue(optimize.has_majority(2, 3))
    self.assertFalse(optimize.has_majority(2, 4))

  def test_original_mixtures(self):
    tokens = {'python': 3e6, 'cpp': 1e6}
    self.assertAlmostEqual(optimize.original('natural', ('python', 'cpp'), tokens, 2.0)
                           .weights['python'], 0.75)
    with self.assertRaisesRegex(ConfigError, 'needs the corpus token counts'):
      optimize.original('natural', ('python', 'cpp'), None, 2.0)


if __name__ == '__main__':
  absltest.main()
