"""Knowledge transfer from the primary language, measured on solved problems (|P ∩ C| / |C|).

P: problems the primary-only model solves (in the primary language) that an L-only model fails
(in L), the "Python-specific" problems. C: problems a checkpoint solves in L. |P∩C|/|C| is the
share of correct L answers that need the primary language's knowledge (docs/method.md).
"""

from __future__ import annotations


def python_specific(python_solved: dict[str, bool], target_solved: dict[str, bool]) -> list[str]:
  """P from two runs' per_problem.json entries: solved by the first, failed by the second."""
  return sorted(t for t, ok in python_solved.items() if ok and not target_solved.get(t, False))


def knowledge_transfer(specific: set[str], solved: set[str]) -> float | None:
  """|P ∩ C| / |C|; None when the checkpoint solves nothing."""
  if not solved:
    return None
  return len(specific & solved) / len(solved)

