"""--mode experiment: the study end to end and resumed; one Eq. 1 in every report."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import tempfile

import numpy as np
from absl.testing import absltest

from babel_jax import io


# The driver, not sharding, is under test here (sharded runs have their own tests): one device
# keeps the study's dozen short runs fast.
ONE_DEVICE = ('--config.mesh.num_devices=1',)


def _phases(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'phases')))


class ExperimentTest(absltest.TestCase):

  def test_tiny_end_to_end(self):
    workdir = tempfile.mkdtemp()
    proc = testing.run_main(workdir, *ONE_DEVICE, mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
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
    self._one_eq1_everywhere(workdir, optimized)

  def _one_eq1_everywhere(self, workdir, optimized):
    """The per-run report, the study report and Algorithm 1 show the same Eq. 1 numbers."""
    study = io.read_json(os.path.join(workdir, 'report', 'eq1.json'))
    dynamics = io.read_json(os.path.join(workdir, 'dynamics.json'))
    for lang in ('php', 'go'):
      run = io.read_json(os.path.join(workdir, 'continual', lang, 'report', 'summary.json'))
      for key in ('alpha', 'beta', 'rule', 'p_star', 'problem'):
        self.assertEqual(run['eq1'][key], study[lang][key], (lang, key))
        self.assertEqual(dynamics[lang]['eq1'][key], study[lang][key], (lang, key))
      np.testing.assert_array_equal(run['eq1']['share'], study[lang]['share'])
      self.assertIsNotNone(study[lang]['problem'])  # synthetic: the falling loss has no peak
      self.assertIn(study[lang]['problem'], optimized['provenance']['kept_original'][lang])

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
