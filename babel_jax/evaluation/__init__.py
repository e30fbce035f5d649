"""Functional-correctness evaluation: HumanEval translated to the studied languages, and runners."""
