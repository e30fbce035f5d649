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
# The planted controls beside one real new language, two seeds, short continual runs.
NO_REFERENCE = ('--config.experiment.reference=False', '--config.experiment.new_languages=php')
CONTROLS = ('--config.experiment.controls=clone,partial,scrambled',
            '--config.experiment.new_languages=php', '--config.experiment.continual_steps=24',
            '--config.experiment.continual_checkpoints=4', '--config.probe.deactivate=False',
            '--config.probe.tokens_per_language=2048', '--config.experiment.reference_seeds=1')


def _phases(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'phases')))


class ExperimentTest(absltest.TestCase):

  def test_tiny_end_to_end_with_controls(self):
    workdir = tempfile.mkdtemp()
    proc = testing.run_main(workdir, *ONE_DEVICE, *CONTROLS, mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertEqual(_phases(workdir), ['1-primary.json', '2-continual.json', '3-dynamics.json',
                                        '4-mixture.json', '5-scratch.json', '6-compare.json'])
    study = io.read_json(os.path.join(workdir, 'config.json'))
    self.assertEqual(study['data']['languages'],
                     'python,php,go,python_clone,python_partial,python_scrambled')
    self.assertEqual(study['model']['vocab_size'], 4 * 256)  # three planted id ranges
    # The primary model never sees the planted ids (they would be trained down): it has the
    # real vocabulary, and every continual run grows it with fresh rows.
    primary = io.read_json(os.path.join(workdir, 'primary', 'config.json'))
    self.assertEqual(primary['model']['vocab_size'], 256)
    info = io.read_json(os.path.join(workdir, 'continual', 'python_clone', 'seed1',
                                     'run_info.json'))
    self.assertEqual(info['grown_vocabulary'], {'from': 256, 'to': 1024, 'fresh_rows_seed': 1})
    # So a planted language starts where its from-scratch reference does (about log V), not in
    # a hole 6 nats deep.
    for lang in ('python_clone', 'python_scrambled'):
      start = [io.read_json(os.path.join(workdir, kind, lang, 'seed0', 'probes', '0.json'))[
          'loss'][lang] for kind in ('continual', 'reference')]
      self.assertLess(abs(start[0] - start[1]), 0.5, (lang, start))
    comparison = io.read_json(os.path.join(workdir, 'comparison.json'))
    # Algorithm 1 gets no P* from synthetic curves: babel keeps the uniform shares, so the two
    # strategies have one mixture, trained once.
    self.assertEqual(comparison['identical'], {'uniform': ['babel']})
    self.assertLen(comparison['runs']['uniform'], 2)
    losses = {r['language']: r for r in comparison['rows'] if r['metric'] == 'heldout_loss'}
    self.assertEqual(sorted(losses), ['go', 'mean(new)', 'php', 'python'])  # controls: no share
    for row in losses.values():
      iv = row['strategies']['uniform']
      self.assertLess(iv['low'], iv['mean'])
      self.assertLess(iv['mean'], 7.0)  # trained: below the untrained log(256)
    optimized = io.read_json(os.path.join(workdir, 'mixture', 'babel.json'))
    self.assertEqual(optimized['weights']['python_clone'], 0.0)
    bake = io.read_json(os.path.join(workdir, 'mixtures.json'))
    self.assertEqual(bake['strategies'], ['uniform', 'babel'])
    self.assertEqual(bake['decision_skipped'], 'experiment.decision_check is False')
    page = open(os.path.join(workdir, 'report', 'index.md')).read()
    for heading in ('## Findings', '## Controls', 'Stages per new language',
                    'Eq. 1 against the measured', 'The Babel Tower mixture', 'Mixture bake-off',
                    '| uniform = babel |'):
      self.assertIn(heading, page)
    for plot in ('controls.png', 'stages.png', 'eq1.png', 'mixture.png', 'bakeoff.png'):
      self.assertTrue(os.path.exists(os.path.join(workdir, 'report', plot)), plot)
    # Continual runs start at the primary run's final parameters, kept as their step 0; the
    # reference runs (one seed: experiment.reference_seeds) keep their untrained step 0.
    for kind, seeds in (('continual', (0, 1)), ('reference', (0,))):
      for k in seeds:
        self.assertTrue(os.path.isdir(os.path.join(workdir, kind, 'python_clone', f'seed{k}',
                                                   'checkpoints', '0')), (kind, k))
    self.assertFalse(os.path.exists(os.path.join(workdir, 'reference', 'python_clone', 'seed1')))
    self._controls_table(workdir)
    self._one_eq1_everywhere(workdir, optimized)

  def _controls_table(self, workdir):
    controls = io.read_json(os.path.join(workdir, 'controls.json'))
    self.assertEqual(sorted(controls['languages']),
                     ['php', 'python_clone', 'python_partial', 'python_scrambled'])
    clone = controls['languages']['python_clone']
    self.assertEqual(clone['kind'], 'clone')
    self.assertLen(clone['seeds'], 2)
    for reading in clone['seeds']:
      self.assertEqual(reading['lens_source'], 'aligned')
      # Against its reference run: a reading, or a censored one counted instead.
      self.assertEqual(reading['transfer_end'] is None, reading['transfer_end_censored'])
      self.assertLen(reading['effective_transfer']['fraction'], len(
          io.read_json(os.path.join(reading['run'], 'report', 'summary.json'))['steps']))
    self.assertEqual(clone['summary']['lens_late']['n'], 2)
    pairs = {(tuple(e['pair']), e['instrument']): e for e in controls['separation']}
    for instrument in ('transfer_end', 'lens_early', 'lens_late', 'transferring_neurons'):
      positive = pairs[('python_clone', 'python_scrambled'), instrument]
      self.assertIn('validated', positive)
      self.assertIn(('python_clone', 'python_partial'), {k[0] for k in pairs})
    page = open(os.path.join(workdir, 'report', 'index.md')).read()
    self.assertIn('python_clone vs python_scrambled', page)
    self.assertRegex(page, r'Positive against negative control \(python_clone vs '
                           r'python_scrambled\)')

  def _one_eq1_everywhere(self, workdir, optimized):
    """The per-run report, the study report and Algorithm 1 show the same Eq. 1 numbers."""
    study = io.read_json(os.path.join(workdir, 'report', 'eq1.json'))
    dynamics = io.read_json(os.path.join(workdir, 'dynamics.json'))
    for lang in ('php', 'python_clone'):
      for k in (0, 1):
        run = io.read_json(os.path.join(workdir, 'continual', lang, f'seed{k}', 'report',
                                        'summary.json'))
        for key in ('alpha', 'beta', 'rule', 'p_star', 'problem'):
          self.assertEqual(run['eq1'][key], study[lang][k][key], (lang, k, key))
          self.assertEqual(dynamics[lang][k]['eq1'][key], study[lang][k][key], (lang, k, key))
        np.testing.assert_array_equal(run['eq1']['share'], study[lang][k]['share'])
    # Synthetic: the performance curve is the falling loss, with no Translation peak.
    self.assertIsNotNone(study['php'][0]['problem'])
    self.assertIn(study['php'][0]['problem'], optimized['provenance']['kept_original']['php'])

  def test_bakeoff_with_regmix_and_the_decision_check(self):
    workdir = tempfile.mkdtemp()
    proc = testing.run_main(
        workdir, *ONE_DEVICE, *NO_REFERENCE, '--config.experiment.continual_steps=16',
        '--config.experiment.strategies=original,babel,regmix',
        '--config.experiment.regmix_runs=6', '--config.experiment.scratch_steps=16',
        '--config.experiment.decision_check=True', '--config.experiment.target_scale=4',
        mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('7-target.json', _phases(workdir))
    bake = io.read_json(os.path.join(workdir, 'mixtures.json'))
    reg = bake['provenance']['regmix']
    self.assertLen(reg['proxies'], 6)
    self.assertEqual(reg['proxy_steps'], 8)  # half of scratch_steps
    for p in reg['proxies']:  # each proxy measured the objective: the mean held-out loss
      self.assertGreater(p['objective'], 0.0)
    self.assertAlmostEqual(sum(bake['weights']['regmix'].values()), 1.0, places=6)
    # Equal compute: every bake-off run reads the same tokens; the target 4x of them.
    d = bake['decision']
    self.assertEqual(d['tokens_per_run'], 4 * bake['tokens_per_run'])
    self.assertGreater(d['parameters'], 2.5 * bake['parameters'])  # d_model x 2
    small, target = (io.read_json(os.path.join(workdir, scale, 'regmix', 'seed1', 'config.json'))
                     for scale in ('scratch', 'target'))
    self.assertEqual((target['model']['d_model'], target['train']['steps']),
                     (2 * small['model']['d_model'], 4 * 16))
    names = set(bake['identical'])
    objective = next(a for a in d['agreement'] if a['language'] == 'mean(new)')
    self.assertEqual(set(objective['strategies']), names)
    acc = objective['accuracy']
    self.assertTrue(0.0 <= acc['value'] <= 1.0, acc)
    page = open(os.path.join(workdir, 'report', 'index.md')).read()
    self.assertIn('Decision check: the same mixtures at 4x', page)

  def test_strategy_errors_are_one_line_before_any_training(self):
    for flag, want in (('natural', 'experiment.strategies: natural needs the corpus token counts'),
                       ('unknown', "experiment.strategies")):
      workdir = tempfile.mkdtemp()
      proc = testing.run_main(workdir, *ONE_DEVICE, f'--config.experiment.strategies={flag}',
                              mode='experiment')
      self.assertNotEqual(proc.returncode, 0)
      self.assertIn(want, proc.stderr)
      self.assertNotIn('Traceback', proc.stderr)
      self.assertFalse(os.path.exists(os.path.join(workdir, 'primary')))

  def test_phases_resume_after_an_interruption(self):
    workdir = tempfile.mkdtemp()
    # Every training run stops after 25 steps of a process: the primary run (40 steps) stops.
    proc = testing.run_main(workdir, '--config.train.stop_after=25', '--config.experiment.seeds=1',
                            *ONE_DEVICE, *NO_REFERENCE,
                            mode='experiment')
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('run the same command again to resume', proc.stdout + proc.stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'phases')))
    proc = testing.run_main(workdir, '--config.experiment.seeds=1', *ONE_DEVICE, *NO_REFERENCE,
                            mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('resumed from', proc.stdout)
    self.assertLen(_phases(workdir), 6)  # phase 7 only with experiment.decision_check
    with open(os.path.join(workdir, 'primary', 'metrics.jsonl')) as f:
      steps = [json.loads(line)['step'] for line in f]
    self.assertEqual(steps, list(range(1, 41)))  # resumed at 26, nothing repeated or lost
    before = os.path.getmtime(os.path.join(workdir, 'comparison.json'))
    proc = testing.run_main(workdir, '--config.experiment.seeds=1', *ONE_DEVICE, *NO_REFERENCE,
                            mode='experiment')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertEqual(proc.stdout.count('done already'), 6)
    self.assertEqual(os.path.getmtime(os.path.join(workdir, 'comparison.json')), before)
    proc = testing.run_main(workdir, '--config.experiment.seeds=1', *ONE_DEVICE, *NO_REFERENCE,
                            '--config.experiment.scratch_steps=30', mode='experiment')
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('phase 5 (scratch)', proc.stderr)
    self.assertIn('finished with another config', proc.stderr)



class PassAtOneTest(absltest.TestCase):

  def test_no_problem_sampled_is_not_measured_rather_than_zero(self):
    from babel_jax.evaluation import sandbox
    from babel_jax.experiment import driver
    cfg = testing.config('tiny')
    study = driver.Study(cfg, tempfile.mkdtemp())
    counts = dict.fromkeys((*sandbox.OUTCOMES, 'untranslated', 'prompt_too_long'), 0)
    too_long = {'outcomes': {**counts, 'prompt_too_long': 4}}
    self.assertFalse(study.sampled('python', too_long, cfg))
    self.assertFalse(study.sampled('go', {'outcomes': {**counts, 'untranslated': 4}}, cfg))
    self.assertIn(f'({cfg.model.max_len} - {cfg.eval.max_new_tokens} tokens)',
                  study.pass_unmeasured['python'])
    one_ran = {'outcomes': {**counts, 'prompt_too_long': 3, 'failed': 1}}
    self.assertTrue(study.sampled('php', one_ran, cfg))
    self.assertNotIn('php', study.pass_unmeasured)

if __name__ == '__main__':
  absltest.main()
