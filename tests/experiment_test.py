"""--mode experiment: statistics, the performance curve, and the study end to end and resumed."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import tempfile
import time

import numpy as np
from absl.testing import absltest

from babel_jax.experiment import compare
from babel_jax.probes import report


class CompareTest(absltest.TestCase):

  def test_interval_known_answer(self):
    iv = compare.interval([1.0, 2.0, 3.0])
    self.assertAlmostEqual(iv['mean'], 2.0)
    half = 4.302653 / np.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n), sd = 1
    self.assertAlmostEqual(iv['low'], 2.0 - half, places=5)
    self.assertAlmostEqual(iv['high'], 2.0 + half, places=5)
    self.assertIsNone(compare.interval([5.0])['low'])

  def test_winner_needs_the_interval_to_exclude_zero(self):
    rows = compare.compare({
        'original': [{'heldout_loss': {'go': 3.0, 'php': 2.0}, 'pass@1': {'go': 0.1}},
                     {'heldout_loss': {'go': 3.1, 'php': 2.5}, 'pass@1': {'go': 0.2}},
                     {'heldout_loss': {'go': 3.2, 'php': 1.5}, 'pass@1': {'go': 0.3}}],
        'optimized': [{'heldout_loss': {'go': 2.0, 'php': 2.1}, 'pass@1': {'go': 0.1}},
                      {'heldout_loss': {'go': 2.1, 'php': 1.4}, 'pass@1': {'go': 0.2}},
                      {'heldout_loss': {'go': 2.2, 'php': 2.4}, 'pass@1': {'go': 0.3}}]},
        ['go', 'php'])
    by = {(r['metric'], r['language']): r for r in rows}
    self.assertEqual(by['heldout_loss', 'go']['winner'], 'optimized')  # lower loss, clearly
    self.assertAlmostEqual(by['heldout_loss', 'go']['difference']['diff'], -1.0)
    self.assertEqual(by['heldout_loss', 'php']['winner'], 'no clear difference')
    self.assertEqual(by['pass@1', 'go']['winner'], 'no clear difference')
    self.assertNotIn(('pass@1', 'php'), by)  # no pass@1 measured for php
    flipped = compare.verdict(compare.difference([2.0, 2.1, 2.2], [3.0, 3.1, 3.2]), True)
    self.assertEqual(flipped, 'original')


class PerformanceCurveTest(absltest.TestCase):

  def test_auto_skips_flat_curves_and_says_so(self):
    results = [{'loss': {'go': 3.0 - i / 10},
                'lens': {'go': {'target_prob': [0.0, 0.1 * i]}}} for i in range(4)]
    flat_eval = [set(), set(), set(), set()]
    curve = report.performance_curve('auto', results, flat_eval, 'go')
    self.assertEqual(curve['source'], 'lens')
    self.assertIn('eval: flat at 0', curve['why'])
    np.testing.assert_allclose(curve['values'], [0.0, 0.1, 0.2, 0.3])
    curve = report.performance_curve('auto', results, [{'a'}, {'a', 'b'}, set(), {'c'}], 'go')
    self.assertEqual((curve['source'], curve['values']), ('eval', [1, 2, 0, 1]))
    no_lens = [{'loss': r['loss']} for r in results]
    curve = report.performance_curve('auto', no_lens, [None] * 4, 'go')
    self.assertEqual(curve['source'], 'loss')
    np.testing.assert_allclose(curve['values'], [-3.0, -2.9, -2.8, -2.7])
    with self.assertRaisesRegex(Exception, "probe.performance='eval'.*no such results"):
      report.performance_curve('eval', no_lens, [None] * 4, 'go')


# The driver, not sharding, is under test here (sharded runs have their own tests): one device
# keeps the study's dozen short runs fast.
ONE_DEVICE = ('--config.mesh.num_devices=1',)


def _phases(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'phases')))


class ExperimentTest(absltest.TestCase):

  def test_tiny_end_to_end_under_a_minute(self):
    workdir = tempfile.mkdtemp()
    t = time.perf_counter()
    proc = testing.run_main(workdir, *ONE_DEVICE, mode='experiment')
    seconds = time.perf_counter() - t
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertLess(seconds, 60)
    self.assertEqual(_phases(workdir), ['1-primary.json', '2-continual.json', '3-dynamics.json',
                                        '4-mixture.json', '5-scratch.json', '6-compare.json'])
    with open(os.path.join(workdir, 'comparison.json')) as f:
      comparison = json.load(f)
    self.assertLen(comparison['runs']['original'], 3)
    losses = {r['language']: r for r in comparison['rows'] if r['metric'] == 'heldout_loss'}
    self.assertEqual(sorted(losses), ['go', 'php', 'python'])
    for row in losses.values():
      self.assertLess(row['original']['low'], row['original']['mean'])
      self.assertLess(row['original']['mean'], 7.0)  # trained: below the untrained log(256)
    page = open(os.path.join(workdir, 'report', 'index.md')).read()
    for heading in ('Stages per new language', 'Eq. 1 against the measured', 'mixture chosen',
                    'From-scratch comparison'):
      self.assertIn(heading, page)
    for plot in ('stages.png', 'eq1.png', 'mixture.png', 'comparison.png'):
      self.assertTrue(os.path.exists(os.path.join(workdir, 'report', plot)), plot)
    # Continual runs start at the primary run's final parameters, kept as their step 0.
    self.assertTrue(os.path.isdir(os.path.join(workdir, 'continual', 'go', 'checkpoints', '0')))
    with open(os.path.join(workdir, 'mixture', 'optimized.json')) as f:
      optimized = json.load(f)
    # On synthetic data the performance curve is the falling loss: no Translation peak, so both
    # fits fall back, the mixtures agree and the original runs stand for both.
    self.assertEqual(sorted(optimized['provenance']['kept_original']), ['go', 'php'])
    self.assertIn('The optimized mixture equals the original', page)
    self.assertEqual(os.listdir(os.path.join(workdir, 'scratch')), ['original'])
    self.assertEqual([r['run'] for r in comparison['runs']['optimized']],
                     [r['run'] for r in comparison['runs']['original']])

  def test_phases_resume_after_an_interruption(self):
    workdir = tempfile.mkdtemp()
    # Every training run stops after 25 steps of a process: the primary run (40 steps) stops.
    proc = testing.run_main(workdir, '--config.train.stop_after=25', *ONE_DEVICE,
                            mode='experiment')
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('run the same command again to resume', proc.stdout + proc.stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'phases')))
    proc = testing.run_main(workdir, '--config.experiment.seeds=2', *ONE_DEVICE,
                            mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('resumed from', proc.stdout)
    self.assertLen(_phases(workdir), 6)
    with open(os.path.join(workdir, 'primary', 'metrics.jsonl')) as f:
      steps = [json.loads(line)['step'] for line in f]
    self.assertEqual(steps, list(range(1, 41)))  # resumed at 26, nothing repeated or lost
    before = os.path.getmtime(os.path.join(workdir, 'comparison.json'))
    proc = testing.run_main(workdir, '--config.experiment.seeds=2', *ONE_DEVICE,
                            mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertEqual(proc.stdout.count('done already'), 6)
    self.assertEqual(os.path.getmtime(os.path.join(workdir, 'comparison.json')), before)
    proc = testing.run_main(workdir, '--config.experiment.seeds=3', *ONE_DEVICE,
                            mode='experiment')
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('phase 5 (scratch)', proc.stderr)
    self.assertIn('finished with another config', proc.stderr)


if __name__ == '__main__':
  absltest.main()
