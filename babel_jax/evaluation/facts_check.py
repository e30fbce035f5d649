"""Planted knowledge checked by running it: every rendering of a fact (data/facts.py) compiled
and run in the evaluation sandbox on seeded inputs, its printed values compared with the Python
definition (`facts.evaluate`).
"""

from __future__ import annotations

import concurrent.futures
from typing import Iterable

from babel_jax.data import facts
from babel_jax.evaluation import execution
from babel_jax.evaluation import languages as eval_languages
from babel_jax.evaluation.harness import CHECKS_DONE

_OUTPUT_BUDGET = 1200  # chars of expected stdout per program (run_program keeps the last 2000)
_MAX_BATCH = 32  # facts per program


def _batches(cases: list[tuple[facts.Fact, list]]) -> list[list[tuple[facts.Fact, list]]]:
  """Consecutive cases whose expected output fits in one program's reported tail."""
  out, size = [[]], 0
  for fact, inputs in cases:
    need = sum(len(str(facts.evaluate(fact, x))) + 1 for x in inputs)
    if out[-1] and (size + need > _OUTPUT_BUDGET or len(out[-1]) >= _MAX_BATCH):
      out.append([])
      size = 0
    out[-1].append((fact, inputs))
    size += need
  return [b for b in out if b]


def _excerpt(text: str, lines: int = 6) -> str:
  return ' | '.join(text.strip().splitlines()[-lines:])


def _run(language: str, cases: list[tuple[facts.Fact, list]], timeout_s: float) -> list[str]:
  """Problems of one program holding `cases`: its outcome, then every disagreement."""
  source = facts.program(cases, language, CHECKS_DONE)
  outcome, tail = execution.run_program(language, source, timeout_s)
  names = ', '.join(fact.name for fact, _ in cases)
  if outcome != 'passed':
    return [f'{language} {names}: {outcome}: {_excerpt(tail)}']
  printed = tail.rpartition(CHECKS_DONE)[0].splitlines()
  want = [(fact, x, str(facts.evaluate(fact, x))) for fact, inputs in cases for x in inputs]
  if len(printed) < len(want):
    return [f'{language} {names}: printed {len(printed)} lines before the marker, expected '
            f'{len(want)}: {_excerpt(tail)}']
  wrong: dict[facts.Fact, list] = {}
  for (fact, x, expected), got in zip(want, printed[len(printed) - len(want):]):
    if got.rstrip() != expected:
      wrong.setdefault(fact, []).append((x, got.rstrip(), expected))
  inputs = dict(cases)
  return [f'{language} {fact.name} ({fact.family}/{fact.form}): {len(w)} of {len(inputs[fact])} '
          f'inputs disagree, e.g. {fact.name}({w[0][0]!r}) printed {w[0][1]!r}, Python gives '
          f'{w[0][2]!r}' for fact, w in wrong.items()]


def validate(to_check: Iterable[facts.Fact], languages: Iterable[str] = facts.LANGUAGES,
             inputs_per_fact: int = 5, seed: int = 0, jobs: int = 2,
             timeout_s: float = 20.0) -> list[str]:
  """Runs every rendering in the sandbox on seeded inputs: the problems, [] when all agree.

  A problem is a missing toolchain, a program that fails to compile or crashes, or a printed
  value other than `evaluate`'s. Facts share a program per language (as many as its reported
  output holds); a program with a problem is rerun one fact at a time to name the culprits.
  """
  cases = [(fact, facts.sample_inputs(fact, inputs_per_fact, seed)) for fact in to_check]
  problems, work = [], []
  for language in languages:
    facts.check_language(language)
    missing = eval_languages.LANGUAGES[language].missing_tools()
    if missing:
      problems.append(f'{language}: toolchain missing: {" ".join(missing)} '
                      '(launch/setup.sh installs it)')
    else:
      work += [(language, batch) for batch in _batches(cases)]
  run = lambda w: _run(*w, timeout_s)  # noqa: E731
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    found = list(pool.map(run, work))
    retry = [(language, [case]) for (language, batch), p in zip(work, found)
             if p and len(batch) > 1 for case in batch]
    alone = dict(zip([(language, case[0].name) for language, [case] in retry],
                     pool.map(run, retry)))
  for (language, batch), p in zip(work, found):
    if p and len(batch) > 1:
      # A batch may fail where no fact alone does (two facts that clash): then report it whole.
      p = [q for fact, _ in batch for q in alone[(language, fact.name)]] or p
    problems += p
  return problems
