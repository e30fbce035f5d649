"""Mixture strategies: Algorithm 1 on curves with known answers; every spec feeds the pipeline."""

from tests import testing  # noqa: F401  (first: fake devices)

import numpy as np
from absl.testing import absltest

from babel_jax.config import ConfigError
from babel_jax.data import pipeline
from babel_jax.mixture import optimize, strategies


def _curves(p_star, n=12, beta=3.0, alpha=2.0):
  """A loss falling from beta to alpha and a performance peak where P(loss) = p_star."""
  steps = np.arange(n)
  loss = alpha + (beta - alpha) * np.exp(-steps / 2.0)
  loss[-3:] = alpha
  best = int(np.argmin(np.abs((alpha - loss) / (alpha - beta) - p_star)))
  loss[best] = alpha + p_star * (beta - alpha)  # exactly P* at the peak
  perf = -np.abs(steps - best).astype(float)
  return loss, perf


class MixtureTest(absltest.TestCase):

  def test_paper_check(self):
    # PAPER.md: eta_python = 11B gives PHP 5B at P* = 0.69 and C# 10B at P* = 0.52.
    spec = strategies.babel_tower(11e9, {'php': 0.69, 'csharp': 0.52})
    t = spec.provenance['target_tokens']
    self.assertAlmostEqual(t['php'] / 1e9, 4.94, places=2)
    self.assertAlmostEqual(t['csharp'] / 1e9, 10.15, places=2)
    self.assertAlmostEqual(sum(spec.weights.values()), 1.0)
    capped = strategies.babel_tower(11e9, {'php': 0.69}, available={'php': 2e9})
    self.assertEqual(capped.provenance['target_tokens']['php'], 2e9)
    self.assertIn('php', capped.provenance['capped'])

  def test_fit_recovers_p_star(self):
    for p in (0.69, 0.52, 0.3):
      loss, perf = _curves(p)
      fit = strategies.fit_system_share(loss, perf, 'php')
      self.assertAlmostEqual(fit['p_star'], p, places=6)
      self.assertEqual((fit['alpha'], fit['beta']), (2.0, 3.0))

  def test_bad_curves_are_named(self):
    loss, perf = _curves(0.5)
    with self.assertRaisesRegex(ConfigError, 'go: 3 checkpoints'):
      strategies.fit_system_share(loss[:3], perf[:3], 'go')
    with self.assertRaisesRegex(ConfigError, 'did not fall'):
      strategies.fit_system_share(loss[::-1], perf, 'go')
    with self.assertRaisesRegex(ConfigError, 'no clear performance peak'):
      strategies.fit_system_share(loss, np.zeros_like(perf), 'go')
    with self.assertRaisesRegex(ConfigError, 'NaN'):
      strategies.fit_system_share(np.where(perf == perf.max(), np.nan, loss), perf, 'go')
    with self.assertRaisesRegex(ConfigError, 'outside'):
      strategies.babel_tower(1e9, {'go': 1.0})

  def test_baselines_and_pipeline_accepts_every_strategy(self):
    tokens = {'python': 3e6, 'cpp': 1e6, 'javascript': 2e6}
    specs = [strategies.natural(tokens), strategies.uniform(list(tokens)),
             strategies.temperature(tokens, 2.0),
             strategies.babel_tower(3e6, {'cpp': 0.6, 'javascript': 0.4}),
             optimize.optimize({'cpp': dict(zip(('loss', 'performance'), _curves(0.6)),
                                            steps=list(range(12)))},
                               ('python', 'cpp', 'javascript'), strategies.natural(tokens),
                               3e6, tokens, 3, 'original')]
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
    curves = {lang: dict(zip(('loss', 'performance'), _curves(p)), steps=list(range(0, 120, 10)))
              for lang, p in (('php', 0.69), ('csharp', 0.52))}
    curves['go'] = {'loss': curves['php']['loss'], 'performance': [0.0] * 12,
                    'steps': list(range(12))}  # flat: no peak to fit
    spec = optimize.optimize(curves, langs, base, 11e9, None, 3, 'original')
    t = spec.provenance['target_tokens']
    self.assertAlmostEqual(t['php'] / 1e9, 4.94, places=2)  # the paper's check, end to end
    self.assertAlmostEqual(t['csharp'] / 1e9, 10.15, places=2)
    self.assertEqual(t['go'], 11e9)  # uniform original: go keeps python's share
    self.assertIn('no clear performance peak', spec.provenance['kept_original']['go'])
    self.assertEqual(spec.provenance['fits']['php']['best_step'],
                     10 * spec.provenance['fits']['php']['best_index'])
    self.assertAlmostEqual(sum(spec.weights.values()), 1.0)
    self.assertEqual(list(spec.weights), list(langs))
    with self.assertRaisesRegex(ConfigError, 'go: no clear performance peak'):
      optimize.optimize(curves, langs, base, 11e9, None, 3, 'raise')

  def test_original_mixtures(self):
    tokens = {'python': 3e6, 'cpp': 1e6}
    self.assertAlmostEqual(optimize.original('natural', ('python', 'cpp'), tokens, 2.0)
                           .weights['python'], 0.75)
    with self.assertRaisesRegex(ConfigError, 'needs the corpus token counts'):
      optimize.original('natural', ('python', 'cpp'), None, 2.0)


if __name__ == '__main__':
  absltest.main()
