"""Evaluation: translated problems run in the sandbox, scoring, and --mode eval end to end."""

from tests import testing  # noqa: F401  (first: fake devices)

import contextlib
import io
import json
import os
import tempfile

from absl.testing import absltest

from babel_jax.evaluation import evaluate, humaneval, sandbox
from babel_jax.evaluation.languages import LANGUAGES, program
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

  def test_scores(self):
    records = [{'task_id': 'a', 'translated': True}, {'task_id': 'b', 'translated': True},
               {'task_id': 'c', 'translated': False}]
    r = evaluate.score('go', records, {'a': ['passed', 'failed'], 'b': ['timeout', 'failed']},
                       [1, 2], seconds=2.0, programs=4)
    self.assertAlmostEqual(r['pass_at_k']['pass@1'], (0.5 + 0 + 0) / 3)
    self.assertAlmostEqual(r['pass_at_k']['pass@2'], (1 + 0 + 0) / 3)
    self.assertEqual(r['outcomes']['timeout'], 1)
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
    self.assertEqual(evaluate.python_specific(files['py.json']['python'],
                                              files['php.json']['php']), ['b', 'd'])
    out = os.path.join(tmp, 'p.json')
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
      evaluate.transfer_main(['--python', os.path.join(tmp, 'py.json'), '--target',
                              os.path.join(tmp, 'php.json'), '--language', 'php', '--out', out,
                              '--checkpoint', os.path.join(tmp, 'ckpt.json')])
    with open(out) as f:
      self.assertEqual(json.load(f), ['b', 'd'])
    self.assertIn('|P∩C|/|C| = 0.333', buf.getvalue())  # C = {a, b, c}; P∩C = {b}


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
