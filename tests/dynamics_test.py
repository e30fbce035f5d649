"""Interpretation: stages, Eq. 1 with known answers, the performance curve, Curves from a run
directory, and the statistics over seeds."""

from tests import testing  # noqa: F401  (first: fake devices)

import dataclasses
import json
import os
import tempfile

import numpy as np
from absl.testing import absltest

from babel_jax import io
from babel_jax.dynamics import analysis, bakeoff, curves, eq1, stages, stats, transfer
from babel_jax.errors import ConfigError, RunError
from babel_jax.probes import result
from babel_jax.probes.result import AlignedReading, Neurons, ProbeResult
from babel_jax.runtime.rundir import RunDir


def _fit_curves(p_star, n=12, beta=3.0, alpha=2.0):
  """A loss falling from beta to alpha and a performance peak where P(loss) = p_star."""
  steps = np.arange(n)
  loss = alpha + (beta - alpha) * np.exp(-steps / 2.0)
  loss[-3:] = alpha
  best = int(np.argmin(np.abs((alpha - loss) / (alpha - beta) - p_star)))
  loss[best] = alpha + p_star * (beta - alpha)  # exactly P* at the peak
  perf = -np.abs(steps - best).astype(float)
  return steps, loss, perf


def _fit(steps, loss, perf, **settings):
  st = stages.detect(steps, perf, 1, 0.1)
  return eq1.fit(steps, loss, st, eq1.Eq1Settings(**{'fit_tail': 3, 'smooth_window': 1, **settings}))


class StagesTest(absltest.TestCase):

  def test_known_boundaries(self):
    steps = np.arange(0, 101, 5)
    perf = np.piecewise(steps.astype(float), [steps <= 40, (steps > 40) & (steps < 70),
                                              steps >= 70],
                        [lambda s: s / 40, lambda s: 1 - 0.5 * (s - 40) / 30, 0.5])
    out = stages.detect(steps, perf, window=1, slope_tolerance=0.05)
    self.assertEqual((out.translation_end, out.stabilization_start), (40, 70))
    self.assertEqual([b.name for b in out.bands], ['translation', 'transition', 'stabilization'])
    self.assertTrue(stages.agrees(55, out))
    self.assertFalse(stages.agrees(20, out))
    self.assertEqual(stages.crossover(steps, np.where(steps < 50, 0.8, 0.2), 1), 50)
    self.assertIsNone(stages.crossover(steps, np.full(len(steps), 0.9), 1))
    np.testing.assert_allclose(stages.smooth([0, 3, 0, 3], 3), [1.5, 1, 2, 1.5])
    self.assertEqual(stages.detect([0, 1], [0, 1], 1, 0.1).reason, '2 checkpoints; need at least 3')
    self.assertAlmostEqual(transfer.knowledge_transfer({'a', 'b'}, {'b', 'c', 'd', 'e'}), 0.25)


class Eq1Test(absltest.TestCase):

  def test_fit_recovers_p_star(self):
    for p in (0.69, 0.52, 0.3):
      fit = _fit(*_fit_curves(p))
      self.assertIsNone(fit.problem)
      self.assertAlmostEqual(fit.p_star, p, places=6)
      self.assertEqual((fit.alpha, fit.beta), (2.0, 3.0))
      self.assertAlmostEqual(fit.share[0], 1.0)
      self.assertAlmostEqual(fit.share[-1], 0.0)

  def test_alpha_and_beta_rules(self):
    steps = np.arange(0, 101, 5)
    loss = np.where(steps < 70, 3.0 - steps / 70, 2.0)
    loss[-1] = 1.7  # the tail mean and the stabilised mean differ
    perf = np.piecewise(steps.astype(float), [steps <= 40, (steps > 40) & (steps < 70),
                                              steps >= 70],
                        [lambda s: s / 40, lambda s: 1 - 0.5 * (s - 40) / 30, 0.5])
    st = stages.detect(steps, perf, 1, 0.05)
    tail = eq1.fit(steps, loss, st, eq1.Eq1Settings(eq1_alpha='tail', fit_tail=3, smooth_window=1))
    self.assertAlmostEqual(tail.alpha, (2.0 + 2.0 + 1.7) / 3)
    stab = eq1.fit(steps, loss, st, eq1.Eq1Settings(eq1_alpha='stabilization', smooth_window=1))
    self.assertEqual(st.stabilization_start, 70)
    self.assertAlmostEqual(stab.alpha, loss[steps >= 70].mean())
    self.assertIn('Stabilization (step 70)', stab.rule)
    smoothed = eq1.fit(steps, loss, st, eq1.Eq1Settings(eq1_beta='smoothed', smooth_window=3))
    self.assertAlmostEqual(smoothed.beta, loss[:2].mean())
    self.assertAlmostEqual(stages.correlation(tail.share, loss), 1.0)  # P falls with the loss

  def test_curves_that_cannot_give_p_star_say_why(self):
    steps, loss, perf = _fit_curves(0.5)
    self.assertIn('3 checkpoints', _fit(steps[:3], loss[:3], perf[:3]).problem)
    self.assertIn('did not fall', _fit(steps, loss[::-1], perf).problem)
    flat = _fit(steps, loss, np.zeros_like(perf))
    self.assertIn('no clear performance peak', flat.problem)
    self.assertIsNone(flat.p_star)
    self.assertEqual(flat.share.shape, loss.shape)  # the share is still reported
    self.assertIn('NaN', _fit(steps, np.where(perf == perf.max(), np.nan, loss), perf).problem)

  def test_a_maximum_at_the_end_or_in_alphas_tail_is_no_peak(self):
    # A falling loss with a noisy end: the tail mean (alpha) is 2.0 and the losses at the last
    # two checkpoints lie above it, so Eq. 1's share there is inside (0, 1): 0.1.
    steps = np.arange(12)
    loss = np.concatenate([3.0 - 0.1 * steps[:9], [1.8, 2.1, 2.1]])
    rising = steps.astype(float)  # monotone: its maximum is the last checkpoint
    fit = _fit(steps, loss, rising)
    self.assertIsNone(fit.p_star)
    self.assertIn('maximum is at the last checkpoint (step 11)', fit.problem)
    self.assertAlmostEqual(fit.share[-1], 0.1)  # still reported
    late = -np.abs(steps - 10.0)  # a maximum at step 10, inside the last 3 (alpha's tail)
    fit = _fit(steps, loss, late)
    self.assertIsNone(fit.p_star)
    self.assertIn("no performance peak before alpha's region", fit.problem)
    self.assertIn('steps 9 to 11', fit.problem)
    self.assertIsNone(_fit(steps, loss, -np.abs(steps - 8.0)).problem)  # just before: a peak
    # 'stabilization': alpha is read from Stabilization on; a maximum there is no peak either.
    st = stages.Stages(np.asarray(late), 10, 10, 8, ())
    fit = eq1.fit(steps, loss, st, eq1.Eq1Settings(eq1_alpha='stabilization', smooth_window=1))
    self.assertIn('Stabilization (step 8)', fit.rule)
    self.assertIn('steps 8 to 11', fit.problem)
    st = stages.Stages(np.asarray(late), 7, 7, 8, ())
    fit = eq1.fit(steps, loss, st, eq1.Eq1Settings(eq1_alpha='stabilization', smooth_window=1))
    self.assertIsNone(fit.problem)
    self.assertAlmostEqual(fit.p_star, (loss[8:].mean() - loss[7]) / (loss[8:].mean() - 3.0))


def _results(n=4):
  return [{'step': 10 * i, 'loss': {'python': 2.0, 'go': 3.0 - i / 10},
           'neurons': {'transferring': {'go': {'total': 5 - i}}},
           'lens': {'go': {'primary_top1': [0.5, 0.4], 'target_top1': [0.1, 0.1 * i],
                           'python_prob': [0.2, 0.1], 'target_prob': [0.1, 0.1 * i]}}}
          for i in range(n)]


class CurvesTest(absltest.TestCase):

  def test_auto_skips_flat_curves_and_says_so(self):
    results = [ProbeResult.from_json(r) for r in _results()]
    lens = curves._lens(results, 'go')
    flat_eval = [set(), set(), set(), set()]
    perf = curves.choose_performance('auto', results, lens, flat_eval, 'go')
    self.assertEqual(perf.source, 'lens')
    self.assertIn('eval: flat at 0', perf.why)
    np.testing.assert_allclose(perf.values, [0.0, 0.1, 0.2, 0.3])
    perf = curves.choose_performance('auto', results, lens, [{'a'}, {'a', 'b'}, set(), {'c'}],
                                     'go')
    self.assertEqual((perf.source, perf.values.tolist()), ('eval', [1, 2, 0, 1]))
    perf = curves.choose_performance('auto', results, None, None, 'go')
    self.assertEqual(perf.source, 'loss')
    np.testing.assert_allclose(perf.values, [-3.0, -2.9, -2.8, -2.7])
    with self.assertRaisesRegex(ConfigError, "dynamics.performance='eval'.*no such results"):
      curves.choose_performance('eval', results, None, None, 'go')

  def test_load_from_a_run_directory(self):
    run = RunDir(tempfile.mkdtemp())
    with self.assertRaisesRegex(RunError, 'not a run directory'):
      curves.load(run)
    cfg = testing.config(**{'data.languages': 'python,go', 'data.weights': '0,1'})
    io.write_json(run.config_path, cfg.to_dict())
    with self.assertRaisesRegex(RunError, 'no probe results'):
      curves.load(run)
    for r in _results():
      result.save(run, ProbeResult.from_json(r))  # files of the older python_* names
    os.makedirs(run.eval_dir(20))
    c = curves.load(run)
    self.assertEqual((c.language, c.primary, c.languages), ('go', 'python', ('python', 'go')))
    np.testing.assert_array_equal(c.steps, [0, 10, 20, 30])
    np.testing.assert_array_equal(c.tokens, c.steps * cfg.train.batch_size * cfg.data.seq_len)
    np.testing.assert_allclose(c.loss, [3.0, 2.9, 2.8, 2.7])
    np.testing.assert_array_equal(c.transferring_neurons, [5, 4, 3, 2])
    np.testing.assert_allclose(c.lens.primary_mass_CxN[1], [0.2 / 0.3, 0.1 / 0.2])
    self.assertIsNone(c.solved)  # only one checkpoint was evaluated: no eval curve
    self.assertEqual(c.performance.source, 'lens')
    a = analysis.analyze(c, analysis.Settings(smooth_window=1))
    self.assertEqual(a.stages.translation_end, 30)
    self.assertIn('4 checkpoints; the fit needs at least 5', a.eq1.problem)
    summary = analysis.summary(c, a)
    json.dumps(summary)  # plain JSON
    self.assertEqual(summary['eq1']['alpha'], a.eq1.alpha)

  def test_aligned_lens_reads_the_within_block_share(self):
    """A planted language's working language is the aligned lens's within-block share; the
    whole-vocabulary probabilities (block bias times structure) stay out of it."""
    def reading(i):
      per_layer = lambda *v: tuple(float(x) for x in v)  # noqa: E731
      return AlignedReading(
          positions=50, primary_within=per_layer(0.9, 0.5), target_within=per_layer(0.1, 0.2),
          within_share=per_layer(0.9 - 0.1 * i, 0.6), primary_top1_within=per_layer(1, 0.5),
          target_top1_within=per_layer(0, 0.1 * i), primary_block_mass=per_layer(0.01, 0.02),
          target_block_mass=per_layer(0.9, 0.9), primary_block_share=per_layer(0.01, 0.02 * i),
          primary_prob=per_layer(0.009, 0.01), target_prob=per_layer(0.09, 0.1 + 0.1 * i))
    results = [ProbeResult(step=10 * i, loss={'python': 2.0, 'python_clone': 3.0},
                           heldout_tokens={}, neurons=Neurons({}, {}), lape=None,
                           aligned_lens={'python_clone': reading(i)}) for i in range(3)]
    lens = curves._lens(results, 'python_clone')
    self.assertEqual(lens.source, 'aligned')
    np.testing.assert_allclose(lens.primary_mass_CxN, [[0.9, 0.6], [0.8, 0.6], [0.7, 0.6]])
    np.testing.assert_allclose(lens.primary_share_C, [0.75, 0.7, 0.65])
    np.testing.assert_allclose(lens.block_mass_CxN[:, 1], [0, 0.02, 0.04])
    np.testing.assert_allclose(lens.target_top1_CxN[:, 1], [0, 0.1, 0.2])
    np.testing.assert_allclose(lens.final_target_prob_C, [0.1, 0.2, 0.3])
    self.assertIsNone(curves._lens(results[:1] + [dataclasses.replace(results[1],
                                                                      aligned_lens={})],
                                   'python_clone'))  # a checkpoint without it: no lens
    probe_set = curves._lens([ProbeResult.from_json(r) for r in _results()], 'go')
    self.assertEqual(probe_set.source, 'probe set')
    self.assertIsNone(probe_set.block_mass_CxN)


class StatsTest(absltest.TestCase):

  def test_interval_known_answer(self):
    iv = stats.interval([1.0, 2.0, 3.0])
    self.assertAlmostEqual(iv['mean'], 2.0)
    half = 4.302653 / np.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n), sd = 1
    self.assertAlmostEqual(iv['low'], 2.0 - half, places=5)
    self.assertAlmostEqual(iv['high'], 2.0 + half, places=5)
    self.assertIsNone(stats.interval([5.0])['low'])

  def test_bakeoff_table_winner_needs_holm_and_every_strategy(self):
    runs = {
        'natural': [{'heldout_loss': {'go': 3.0, 'php': 2.0}, 'pass@1': {'go': 0.1}},
                    {'heldout_loss': {'go': 3.1, 'php': 2.5}, 'pass@1': {'go': 0.2}},
                    {'heldout_loss': {'go': 3.2, 'php': 1.5}, 'pass@1': {'go': 0.3}}],
        'babel': [{'heldout_loss': {'go': 2.0, 'php': 2.1}, 'pass@1': {'go': 0.1}},
                  {'heldout_loss': {'go': 2.1, 'php': 1.4}, 'pass@1': {'go': 0.2}},
                  {'heldout_loss': {'go': 2.2, 'php': 2.4}, 'pass@1': {'go': 0.3}}]}
    rows = bakeoff.table(runs, ['go', 'php'], ['go', 'php'], 'worst')
    by = {(r['metric'], r['language']): r for r in rows}
    self.assertEqual(by['heldout_loss', 'go']['winner'], 'babel')  # lower loss, clearly
    self.assertAlmostEqual(by['heldout_loss', 'go']['strategies']['babel']['mean'], 2.1)
    self.assertIsNone(by['heldout_loss', 'php']['winner'])
    self.assertIn('no clear winner', by['heldout_loss', 'php']['verdict'])
    self.assertIsNone(by['pass@1', 'go']['winner'])
    self.assertNotIn(('pass@1', 'php'), by)  # no pass@1 measured for php
    # The objective: the worst of go and php per seed (3.0, 3.1, 3.2 against 2.1, 2.1, 2.4).
    worst = by['heldout_loss', 'worst(new)']['strategies']
    np.testing.assert_allclose(worst['natural']['values'], [3.0, 3.1, 3.2])
    np.testing.assert_allclose(worst['babel']['values'], [2.1, 2.1, 2.4])
    self.assertEqual(rows[0]['language'], 'worst(new)')  # the objective's row first
    # A third strategy equal to babel: babel no longer beats every other, so no winner.
    runs['unimax'] = [{'heldout_loss': {'go': v + 1e-3 * i, 'php': 2.0}}
                      for i, v in enumerate((2.0, 2.1, 2.2))]
    go = {(r['metric'], r['language']): r for r in bakeoff.table(
        runs, ['go', 'php'], ['go', 'php'], 'mean')}['heldout_loss', 'go']
    self.assertIsNone(go['winner'])
    self.assertLen(go['pairs'], 3)


if __name__ == '__main__':
  absltest.main()
