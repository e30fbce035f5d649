"""Sandbox: outcomes of plain programs, and pass@k. (Hostile programs: reliability_test.py.)"""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import shutil

from absl.testing import absltest

from babel_jax.evaluation import sandbox

PY = shutil.which('python3', path=sandbox.SYSTEM_PATH) or '/usr/bin/python3'


def _run(code, timeout_s=3.0, level=None, **limits):
  box = sandbox.Sandbox(sandbox.Limits(**{'cpu_s': 2, 'memory_mb': 512, 'processes': 64,
                                          'output_bytes': 1 << 16, **limits}), level=level)
  return box.run({'main.py': code}, [sandbox.Step([PY, 'main.py'], timeout_s)])


class SandboxTest(absltest.TestCase):

  def test_outcomes(self):
    self.assertEqual(_run('print("hi")').outcome, 'passed')
    self.assertEqual(_run('print("hi")').stdout, 'hi\n')
    self.assertEqual(_run('assert 1 == 2').outcome, 'failed')
    if shutil.which('gcc'):
      r = sandbox.Sandbox().run({'a.c': 'int main( {'},
                                [sandbox.Step(['gcc', 'a.c'], 10, compile=True)])
      self.assertEqual((r.outcome, r.stage), ('compile_error', 'compile'))

  def test_every_level_this_machine_has(self):
    levels = sandbox.LEVELS[sandbox.LEVELS.index(sandbox.isolation()):]
    for level in levels:
      r = _run('import os; print(os.getuid(), os.path.basename(os.getcwd()))', level=level)
      self.assertEqual(r.outcome, 'passed', f'{level}: {r.stderr}')
      if os.geteuid() == 0:  # root: every level runs the program under the slot's uid
        self.assertEqual(r.stdout.split()[0], str(sandbox._BASE_UID), level)
      self.assertEqual(_run('assert 1 == 2', level=level).outcome, 'failed', level)
      killed = _run('import os, signal; os.kill(os.getpid(), signal.SIGKILL)', level=level)
      self.assertEqual((killed.outcome, killed.returncode), ('runtime_error', -9), level)


class PassAtKTest(absltest.TestCase):

  def test_known_values(self):
    from babel_jax.evaluation import passk
    self.assertEqual(passk.pass_at_k(1, 1, 1), 1.0)
    self.assertEqual(passk.pass_at_k(1, 0, 1), 0.0)
    self.assertAlmostEqual(passk.pass_at_k(10, 3, 1), 0.3)
    self.assertAlmostEqual(passk.pass_at_k(5, 2, 2), 1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    self.assertEqual(passk.pass_at_k(5, 4, 2), 1.0)
    with self.assertRaisesRegex(ValueError, 'pass@3'):
      passk.pass_at_k(2, 1, 3)
    self.assertAlmostEqual(passk.mean_pass_at_k({'a': (4, 1), 'b': (4, 4)}, 1), 0.625)
    self.assertIsNone(passk.mean_pass_at_k({'a': (4, 1), 'b': (1, 1)}, 2))


if __name__ == '__main__':
  absltest.main()
