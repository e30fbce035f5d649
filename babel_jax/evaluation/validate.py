"""Validates the translated HumanEval by running programs.

* solutions: hand-written function bodies under data/solutions/<language>/ -- every
  HumanEval_<n>_correct.txt must pass its tests and every HumanEval_<n>_wrong.txt must fail them;
* --harness: every translated problem, completed by a body that only returns a default value of
  the return type, must compile and run to a test failure (a compile or runtime error would be
  the harness's fault, a pass a test that checks nothing); an empty body's outcomes are reported.

  python -m babel_jax.evaluation.validate [--languages go cpp] [--harness] [--jobs 2]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import re
import sys

from babel_jax.evaluation import humaneval
from babel_jax.evaluation import sandbox
from babel_jax.evaluation import translate
from babel_jax.evaluation.execution import run_program
from babel_jax.evaluation.humaneval import Untranslatable
from babel_jax.evaluation.languages import LANGUAGES, program

SOLUTIONS_DIR = os.path.join(translate.DATA_DIR, 'solutions')
_SOLUTION_FILE = re.compile(r'HumanEval_(\d+)_(correct|wrong)\.txt$')


def solutions(language: str) -> list[tuple[str, str, str]]:
  """(task_id, 'correct' | 'wrong', body) for every solution file of the language, by task."""
  directory = os.path.join(SOLUTIONS_DIR, language)
  found = []
  for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
    match = _SOLUTION_FILE.match(name)
    if match:
      with open(os.path.join(directory, name), encoding='utf-8') as f:
        found.append((int(match.group(1)), match.group(2), f.read()))
  return [(f'HumanEval/{n}', kind, body) for n, kind, body in sorted(found)]


def records_by_task(language: str, data_dir: str = translate.DATA_DIR) -> dict[str, dict]:
  return {r['task_id']: r for r in translate.load(language, data_dir)}


def check_solution(record: dict, kind: str, body: str, timeout_s: float = 20.0):
  """(ok, outcome, output tail): a correct body must pass, a wrong one must fail its tests."""
  outcome, tail = run_program(record['language'], program(record, body), timeout_s)
  return outcome == ('passed' if kind == 'correct' else 'failed'), outcome, tail


def _parallel(jobs: int, calls):
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    futures = [pool.submit(fn, *args) for fn, *args in calls]
    return [f.result() for f in futures]


def validate_solutions(languages, jobs: int) -> bool:
  ok = True
  for lang in languages:
    records = records_by_task(lang)
    entries = solutions(lang)
    results = _parallel(jobs, [(check_solution, records[task], kind, body)
                               for task, kind, body in entries])
    counts = collections.Counter((kind, outcome) for (_, kind, _), (_, outcome, _)
                                 in zip(entries, results))
    print(f'{lang:>10}: ' + ', '.join(f'{kind} {outcome}: {n}'
                                      for (kind, outcome), n in sorted(counts.items())))
    for (task, kind, _), (good, outcome, tail) in zip(entries, results):
      if not good:
        ok = False
        print(f'  UNEXPECTED {task} {kind}: {outcome}\n' + _indent(tail))
  return ok


def validate_harness(languages, jobs: int) -> bool:
  """Runs each translated problem with a default-returning body, and with an empty one.

  The default-returning body must always get as far as a failed test; False otherwise. An empty
  body is only reported: Go, C# and Java rightly reject a function without a return.
  """
  analyses = {}
  for problem in humaneval.load_problems():
    try:
      analyses[problem['task_id']] = translate.analyze(problem)
    except Untranslatable:
      analyses[problem['task_id']] = None
  ok = True
  for lang in languages:
    target = translate.TARGETS[lang]
    records = [r for r in translate.load(lang) if r['translated']]
    for label, bodies in (
        ('default-returning body', [target.default_body(analyses[r['task_id']]) for r in records]),
        ('empty body', [''] * len(records))):
      results = _parallel(jobs, [(run_program, lang, program(r, body), 20.0)
                                 for r, body in zip(records, bodies)])
      counts = collections.Counter(outcome for outcome, _ in results)
      print(f'{lang:>10}: {label} over {len(records)} problems: '
            + ', '.join(f'{outcome} {n}' for outcome, n in sorted(counts.items())))
      if label == 'empty body':
        continue
      for record, (outcome, tail) in zip(records, results):
        # Python runs HumanEval's own asserts, which may trip over a default value (len(None)).
        if outcome in ('compile_error', 'passed') or (
            outcome in ('runtime_error', 'timeout') and lang != 'python'):
          ok = False
          print(f'  {record["task_id"]}: {outcome}\n' + _indent(tail))
  return ok


def _indent(text: str, lines: int = 15) -> str:
  return '\n'.join('      ' + line for line in text.strip().splitlines()[-lines:])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--languages', nargs='+', default=list(translate.LANGUAGE_ORDER),
                      choices=translate.LANGUAGE_ORDER)
  parser.add_argument('--harness', action='store_true',
                      help='also run every translated problem with a default-returning body')
  parser.add_argument('--jobs', type=int, default=2)
  args = parser.parse_args(argv)
  print(f'sandbox isolation {sandbox.isolation_note()}')
  languages = []
  for lang in args.languages:
    missing = LANGUAGES[lang].missing_tools()
    if missing:
      print(f'{lang:>10}: skipped, toolchain missing: {" ".join(missing)}')
    else:
      languages.append(lang)
  ok = validate_solutions(languages, args.jobs)
  if args.harness:
    ok = validate_harness(languages, args.jobs) and ok
  print('OK' if ok else 'FAILED')
  return 0 if ok else 1


if __name__ == '__main__':
  sys.exit(main())
