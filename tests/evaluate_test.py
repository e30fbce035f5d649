"""Evaluation: translated problems run in the sandbox, scoring, and --mode eval end to end."""

from tests import testing  # noqa: F401  (first: fake devices)

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from babel_jax.dynamics import transfer
from babel_jax.evaluation import evaluate, humaneval, sandbox
from babel_jax.evaluation.languages import LANGUAGES, program, truncate
from babel_jax.train import loop


def _executor():
  return evaluate.Executor(2, sandbox.Limits(cpu_s=10), compile_timeout_s=60, run_timeout_s=10)


class ExecuteTest(absltest.TestCase):

  def test_canonical_python_solutions_pass_and_broken_ones_fail(self):
    problems = {p['task_id']: p for p in humaneval.load_problems()}
    records = evaluate.load_records('python', problems=6)
    good = [program(r, problems[r['task_id']]['canonical_solution']) for r in records]
    bad = [program(r, '    return None\n') for r in records]
    crash = [program(r, '    raise RuntimeError("boom")\n') for r in records[:2]]
    ex = _executor()
    self.assertEqual([o for o, _ in ex.run(LANGUAGES['python'], good)], ['passed'] * 6)
    bad_outcomes = {o for o, _ in ex.run(LANGUAGES['python'], bad)}
    self.assertIn('failed', bad_outcomes)  # a wrong answer fails its checks ...
    self.assertLessEqual(bad_outcomes, {'failed', 'runtime_error'})  # ... or trips over None
    self.assertEqual({o for o, _ in ex.run(LANGUAGES['python'], crash)}, {'runtime_error'})

  def test_hand_written_solutions_in_every_language(self):
    from babel_jax.evaluation import validate
    ex = _executor()
    for name, lang in LANGUAGES.items():
      if name == 'python' or lang.missing_tools():
        continue
      by_task = validate.records_by_task(name)
      cases = validate.solutions(name)[:4]  # two problems: correct and wrong variants
      self.assertNotEmpty(cases, name)
      outcomes = ex.run(lang, [program(by_task[t], body) for t, _, body in cases])
      for (task, kind, _), (outcome, tail) in zip(cases, outcomes):
        self.assertEqual(outcome, 'passed' if kind == 'correct' else 'failed',
                         f'{name} {task} {kind}: {tail[-300:]}')

  def test_hand_written_solution_sets(self):
    """Every language has the same >= 40 problems, each with both variants, none cut short."""
    from babel_jax.evaluation import validate
    tasks = {}
    for name in LANGUAGES:
      entries = validate.solutions(name)
      kinds = {}
      for task, kind, body in entries:
        kinds.setdefault(task, set()).add(kind)
      tasks[name] = set(kinds)
      self.assertGreaterEqual(len(kinds), 40, name)
      self.assertEqual({t for t, k in kinds.items() if k != {'correct', 'wrong'}}, set(), name)
      records = validate.records_by_task(name)
      for task, kind, body in entries:
        self.assertTrue(records[task]['translated'], f'{name} {task}')
        self.assertEqual(truncate(body, records[task]['stop']), body, f'{name} {task} {kind}')
    self.assertEqual({name: ids for name, ids in tasks.items() if ids != tasks['python']}, {})

  def test_scores(self):
    records = [{'task_id': 'a', 'translated': True}, {'task_id': 'b', 'translated': True},
               {'task_id': 'c', 'translated': False}]
    r = evaluate.score('go', records, {'a': ['passed', 'failed'], 'b': ['timeout', 'failed']},
                       [1, 2], seconds=2.0, programs=4)
    self.assertAlmostEqual(r['pass_at_k']['pass@1'], (0.5 + 0 + 0) / 3)
    self.assertAlmostEqual(r['pass_at_k']['pass@2'], (1 + 0 + 0) / 3)
    self.assertEqual(r['outcomes']['timeout'], 1)
    self.assertEqual(r['outcomes']['untranslated'], 1)
    self.assertEqual(r['translated'], 2)
    self.assertEqual(r['programs_per_s'], 2.0)


class TransferTest(absltest.TestCase):

  def test_python_specific_set_and_ratio(self):
    tmp = tempfile.mkdtemp()
    files = {'py.json': {'python': {'a': True, 'b': True, 'c': False, 'd': True}},
             'php.json': {'php': {'a': True, 'b': False, 'c': False, 'd': False}},
             'ckpt.json': {'php': {'a': True, 'b': True, 'c': True, 'd': False}}}
    for name, content in files.items():
      with open(os.path.join(tmp, name), 'w') as f:
        json.dump(content, f)
    self.assertEqual(transfer.python_specific(files['py.json']['python'],
                                              files['php.json']['php']), ['b', 'd'])
    out = os.path.join(tmp, 'p.json')
    proc = subprocess.run(
        [sys.executable, '-m', 'babel_jax.main', '--mode=transfer',
         f'--python_results={tmp}/py.json', f'--target_results={tmp}/php.json',
         '--language=php', f'--out={out}', f'--checkpoint_results={tmp}/ckpt.json'],
        cwd=testing.REPO, capture_output=True, text=True, timeout=120)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(out) as f:
      self.assertEqual(json.load(f), ['b', 'd'])
    self.assertIn('|P∩C|/|C| = 0.333', proc.stdout)  # C = {a, b, c}; P∩C = {b}
    bad = subprocess.run([sys.executable, '-m', 'babel_jax.main', '--mode=transfer',
                          f'--python_results={tmp}/php.json', f'--target_results={tmp}/php.json',
                          '--language=php', f'--out={out}'],
                         cwd=testing.REPO, capture_output=True, text=True, timeout=120)
    self.assertEqual(bad.returncode, 1)
    self.assertIn("php.json: expected a per_problem.json with results for 'python'", bad.stderr)
    self.assertNotIn('Traceback', bad.stderr)


class EvalModeTest(absltest.TestCase):

  def test_eval_mode_writes_results_per_checkpoint(self):
    corpus_dir, tok_dir = testing.small_corpus()
    cfg = testing.corpus_config(**{
        'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir, 'model.max_len': 512,
        'train.steps': 2, 'checkpoint.log_spaced': 0, 'checkpoint.every_steps': 2,
        'eval.problems': 2, 'eval.max_new_tokens': 16, 'eval.samples': 2,
        'eval.temperature': 0.8, 'eval.k': '1,2', 'eval.languages': 'python,javascript'})
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
      self.assertEqual(evaluate.walk(cfg, workdir), [2])
    self.assertEqual(log.getvalue().count(f'eval: sandbox isolation {sandbox.isolation()} ('), 1)
    out = os.path.join(workdir, 'eval', '2')
    with open(os.path.join(out, 'results.json')) as f:
      results = json.load(f)['results']
    for lang in ('python', 'javascript'):
      r = results[lang]
      self.assertEqual(r['problems'], 2)
      self.assertEqual(sum(r['outcomes'].values()), 4)  # 2 problems x 2 samples
      self.assertIsNotNone(r['pass_at_k']['pass@2'])
    with open(os.path.join(out, 'completions.jsonl')) as f:
      self.assertLen(f.readlines(), 8)
    with open(os.path.join(out, 'per_problem.json')) as f:
      self.assertEqual(sorted(json.load(f)['python']), ['HumanEval/0', 'HumanEval/1'])
    self.assertEqual(evaluate.walk(cfg, workdir), [])  # done steps are skipped


if __name__ == '__main__':
  absltest.main()
