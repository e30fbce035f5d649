"""--mode calibrate's table: the first scale at which an instrument separates each pair."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import tempfile

from absl.testing import absltest

from babel_jax import io
from babel_jax.errors import ConfigError
from babel_jax.experiment import calibrate


def _table(separating: set[tuple[str, str]], censored: int = 0):
  """A controls table in which `separating` (instrument, kind) pairs separate from scrambled."""
  langs = {f'python_{k}': {'summary': {'transfer_end': {'censored': censored}}}
           for k in ('clone', 'partial', 'scrambled')}
  entries = [{'pair': [f'python_{k}', 'python_scrambled'], 'instrument': i,
              'as_predicted': (i, k) in separating}
             for i in calibrate.controls_lib.INSTRUMENTS for k in ('clone', 'partial')]
  return {'languages': langs, 'separation': entries}


class CalibrateTest(absltest.TestCase):

  def test_first_scale_per_instrument_and_pair(self):
    order = ['x1-w64', 'x4-w64', 'x16-w64']
    tables = {'x1-w64': _table(set()),
              'x4-w64': _table({('lens_late', 'clone')}, censored=2),
              'x16-w64': _table({('lens_late', 'clone'), ('transfer_end', 'partial')})}
    summary = calibrate.summarise_calibration(tables, order)
    first = {(r['instrument'], r['pair']): r['first_scale'] for r in summary['rows']}
    self.assertEqual(first['lens_late', 'clone vs scrambled'], 'x4-w64')
    self.assertEqual(first['transfer_end', 'partial vs scrambled'], 'x16-w64')
    self.assertIsNone(first['lens_early', 'clone vs scrambled'])  # never: must not separate
    self.assertEqual(summary['censored']['x4-w64']['clone'], 2)
    page = calibrate.markdown(summary)
    self.assertIn('| lens_early | clone vs scrambled | not seen up to x16-w64 | no | no | no |',
                  page)
    # A sweep stopped after its first scale reports what it ran.
    partial = calibrate.summarise_calibration({'x1-w64': tables['x1-w64']}, order)
    self.assertEqual(partial['scales'], ['x1-w64'])
    self.assertIn('not seen up to x1-w64', calibrate.markdown(partial))

  def test_scales_parse_or_fail_with_one_line(self):
    self.assertEqual([s.name for s in calibrate.parse_scales('1@64, 16@128')],
                     ['x1-w64', 'x16-w128'])
    for bad in ('4x64', '0@64', ''):
      with self.assertRaisesRegex(ConfigError, 'calibrate.scales'):
        calibrate.parse_scales(bad)

  def test_a_tiny_sweep_end_to_end_and_resumed(self):
    """Two scales of one width on synthetic data: one primary model shared, a controls table per
    scale, the calibration table with both, and a second run that trains nothing again."""
    workdir = tempfile.mkdtemp()
    args = ('--config.mesh.num_devices=1', '--config.experiment.controls=clone,scrambled',
            '--config.calibrate.scales=1@16,2@16', '--config.experiment.primary_steps=16',
            '--config.experiment.continual_steps=8', '--config.experiment.reference_factor=2',
            '--config.probe.deactivate=False', '--config.probe.tokens_per_language=512')
    proc = testing.run_main(workdir, *args, mode='calibrate')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('steps ->', proc.stdout)
    scales = os.path.join(workdir, 'scales')
    self.assertEqual(sorted(os.listdir(scales)), ['x1-w16', 'x2-w16'])
    self.assertTrue(os.path.islink(os.path.join(scales, 'x2-w16', 'primary')))
    for name, steps in (('x1-w16', 8), ('x2-w16', 16)):
      table = io.read_json(os.path.join(scales, name, 'controls.json'))
      self.assertEqual(sorted(table['languages']), ['python_clone', 'python_scrambled'])
      ref = io.read_json(os.path.join(scales, name, 'reference', 'python_clone', 'seed1',
                                      'config.json'))
      self.assertEqual(ref['train']['steps'], 2 * steps)  # reference_factor times as long
    summary = io.read_json(os.path.join(workdir, 'calibration.json'))
    self.assertEqual(summary['scales'], ['x1-w16', 'x2-w16'])
    page = open(os.path.join(workdir, 'calibration.md')).read()
    self.assertIn('| lens_late | clone vs scrambled |', page)
    again = testing.run_main(workdir, *args, mode='calibrate')
    self.assertEqual(again.returncode, 0, again.stderr[-3000:])
    self.assertNotIn('steps ->', again.stdout)  # every run finished already: nothing trained


if __name__ == '__main__':
  absltest.main()
