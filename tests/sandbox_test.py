"""Sandbox: hostile programs are contained, recorded as failures, and leave the host alone."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import shutil
import time

from absl.testing import absltest

from babel_jax.evaluation import sandbox

PY = shutil.which('python3', path=sandbox.SYSTEM_PATH) or '/usr/bin/python3'


def _run(code, timeout_s=3.0, **limits):
  box = sandbox.Sandbox(sandbox.Limits(**{'cpu_s': 2, 'memory_mb': 512, 'processes': 64,
                                          'output_bytes': 1 << 16, **limits}))
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

  def test_hostile_programs_are_contained(self):
    t = time.time()
    self.assertEqual(_run('while True: pass').outcome, 'timeout')  # CPU limit
    self.assertEqual(_run('import time; time.sleep(60)', timeout_s=1).outcome, 'timeout')
    fork = _run('import os\nwhile True:\n  try: os.fork()\n  except OSError: pass', timeout_s=2)
    self.assertIn(fork.outcome, ('timeout', 'runtime_error'))
    self.assertEqual(_run('x = bytearray(4 * 1024**3)').outcome, 'runtime_error')
    spam = _run('import sys\nwhile True: sys.stdout.write("x" * 65536)')
    self.assertEqual(spam.outcome, 'runtime_error')
    self.assertLessEqual(len(spam.stdout), 1 << 16)
    if sandbox.isolation() == 'full':  # another uid: the repository is not writable
      target = os.path.join(testing.REPO, 'escape_test_file')
      self.assertNotEqual(_run(f'open({target!r}, "w").write("x")').outcome, 'passed')
      self.assertFalse(os.path.exists(target))
    self.assertNotEqual(_run('open("../escaped", "w").write("x")').outcome, 'passed')
    self.assertLess(time.time() - t, 30)
    if sandbox.isolation() == 'full':
      net = _run('import socket\nsocket.create_connection(("1.1.1.1", 80), timeout=2)')
      self.assertEqual(net.outcome, 'failed')
      self.assertIn('unreachable', net.stderr)
      _run('open("/tmp/sandbox_escape", "w").write("x")')
      self.assertFalse(os.path.exists('/tmp/sandbox_escape'))
      self.assertEqual(sandbox._uid_processes(sandbox._BASE_UID), [])



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
