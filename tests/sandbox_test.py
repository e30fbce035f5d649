"""Sandbox: outcomes of plain programs, and pass@k. (Hostile programs: reliability_test.py.)"""

from tests import testing  # noqa: F401  (first: fake devices)

import concurrent.futures
import os
import shutil

from absl.testing import absltest

from babel_jax.evaluation import execution, sandbox, validate
from babel_jax.evaluation.languages import LANGUAGES, program

PY = shutil.which('python3', path=sandbox.SYSTEM_PATH) or '/usr/bin/python3'
# Compiled into the program's box, then run from there (a binary, or bytecode for a VM).
COMPILED = ('cpp', 'go', 'java', 'csharp')


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
      if os.geteuid() == 0:  # root: every level runs the program under a slot's uid (the first
        # free one: other evaluations on this machine may hold the lower slots meanwhile)
        self.assertIn(int(r.stdout.split()[0]),
                      range(sandbox._BASE_UID, sandbox._BASE_UID + sandbox.MAX_SLOTS), level)
      self.assertEqual(_run('assert 1 == 2', level=level).outcome, 'failed', level)
      killed = _run('import os, signal; os.kill(os.getpid(), signal.SIGKILL)', level=level)
      self.assertEqual((killed.outcome, killed.returncode), ('runtime_error', -9), level)
      self.assertTrue(killed.stderr.endswith('[sandbox: killed by signal 9 (SIGKILL)]\n'),
                      (level, killed.stderr))


def _levels_here() -> tuple[str, ...]:
  return sandbox.LEVELS[sandbox.LEVELS.index(sandbox.isolation()):]


class CompiledProgramsTest(absltest.TestCase):
  """Compiled languages at each isolation level. A root host without bubblewrap runs programs at
  'namespaces'; one where every C++ program ended runtime_error with no output motivated these."""

  def _solutions_pass(self, level):
    if level not in _levels_here():
      self.skipTest(f'level {level!r} is not available here: {sandbox.isolation_note()}')
    missing = {name: LANGUAGES[name].missing_tools() for name in COMPILED
               if LANGUAGES[name].missing_tools()}
    if missing:
      print(f'{level}: skipping compiled languages whose toolchain is missing: {missing}')
    cases = []
    for name in COMPILED:
      if name not in missing:
        task, _, body = next(c for c in validate.solutions(name) if c[1] == 'correct')
        cases.append((name, task, program(validate.records_by_task(name)[task], body)))
    if not cases:
      self.skipTest(f'no compiled language has its toolchain here: {missing}')
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      results = list(pool.map(
          lambda c: execution.run_program(c[0], c[2], 10.0, level=level), cases))
    for (name, task, _), (outcome, tail) in zip(cases, results):
      self.assertEqual(outcome, 'passed', f'{level} {name} {task}: {tail[-400:]}')

  def test_compiled_solutions_pass_at_full(self):
    self._solutions_pass('full')

  def test_compiled_solutions_pass_at_namespaces(self):
    self._solutions_pass('namespaces')

  def test_compiled_solutions_pass_at_rlimits(self):
    self._solutions_pass('rlimits')

  def test_a_crash_says_why(self):
    """A crash that prints nothing still tells why: g++ >= 13 at -O0 compiles a function that
    ends without a return to a trap (SIGILL), the commonest crash of a tiny model's C++."""
    if LANGUAGES['cpp'].missing_tools():
      self.skipTest(f'no C++ toolchain here: {LANGUAGES["cpp"].missing_tools()}')
    record = validate.records_by_task('cpp')['HumanEval/0']
    cases = [(level, '    __builtin_trap();\n', 'killed by signal 4 (SIGILL)')
             for level in _levels_here()]
    cases += [(None, '    return *(volatile int *)nullptr == 0;\n',
               'killed by signal 11 (SIGSEGV)'),
              (None, '    std::exit(1);\n', "exit status 1, not a failed check's 3")]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      results = list(pool.map(
          lambda c: execution.run_program('cpp', program(record, c[1]), 10.0, level=c[0]), cases))
    for (level, body, why), (outcome, tail) in zip(cases, results):
      self.assertEqual(outcome, 'runtime_error', (level, body, tail))
      self.assertTrue(tail.endswith(f'[sandbox: {why}]\n'), (level, body, tail))


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
