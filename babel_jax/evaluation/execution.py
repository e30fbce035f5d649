"""Runs one assembled program of an evaluation language in the sandbox and classifies it.

The one place that turns a Language's commands into sandbox steps and an exit into an outcome;
both evaluation of model output (`evaluate.Executor`) and validation of the hand-written
solutions (`validate.py`) go through it.
"""

from __future__ import annotations

import secrets

from babel_jax.evaluation import sandbox
from babel_jax.evaluation.harness import CHECKS_DONE, FAILED_EXIT_CODE
from babel_jax.evaluation.languages import LANGUAGES

OUTCOMES = sandbox.OUTCOMES
TAIL_CHARS = 2000
# JVMs reserve more address space than the sandbox allows unless told to keep it small.
JAVA_OPTIONS = ('-Xmx256m -Xss16m -XX:CompressedClassSpaceSize=64m -XX:ReservedCodeCacheSize=64m '
                '-XX:+UseSerialGC -XX:TieredStopAtLevel=1')


def run_program(language: str, source: str, timeout_s: float = 10.0,
                compile_timeout_s: float = 60.0,
                limits: sandbox.Limits | None = None,
                level: str | None = None) -> tuple[str, str]:
  """Compiles (where needed) and runs `source`: (outcome, tail of stdout+stderr).

  outcome: passed, failed (a test check failed, or an exit 0 before the last check),
  compile_error, timeout, runtime_error. `source` is prompt + completion + tests, whose last
  statement prints harness.CHECKS_DONE: that last occurrence (the tests', after any the
  completion may contain) becomes a fresh random token, drawn here, after the completion was
  written, and only an exit 0 whose stdout has the token passes. The token is not seeded: it
  changes no result, and nothing may predict it. `level` forces a sandbox isolation level
  (tests); by default the best this machine has.

  The tail ends with a '[sandbox: ...]' line where the program's output may not say what ended
  it: a signal (a C++ trap or segfault prints nothing), an exit status other than a failed
  check's, a time limit.
  """
  lang = LANGUAGES[language]
  head, found, tail = source.rpartition(CHECKS_DONE)
  if not found:
    raise ValueError(f'a {language} program must print {CHECKS_DONE} after its last check '
                     '(stale data? rerun python -m babel_jax.evaluation.translate)')
  token = 'checks done ' + secrets.token_hex(16)
  source = head + token + tail
  limits = limits or sandbox.Limits(cpu_s=int(timeout_s) + 1)
  fill = lambda a: a.replace('{file}', '{dir}/' + lang.file_name)  # noqa: E731
  steps = []
  if lang.compile:
    steps.append(sandbox.Step([fill(a) for a in lang.compile], compile_timeout_s, compile=True))
  steps.append(sandbox.Step([fill(a) for a in lang.run], timeout_s))
  env = {k: fill(v) for k, v in lang.env}
  env['JAVA_TOOL_OPTIONS'] = JAVA_OPTIONS
  try:
    # Any uid slot free on this machine (sandbox.hold_slot): parallel workers, and other
    # evaluations running here, never share one.
    r = sandbox.Sandbox(limits, level=level).run({lang.file_name: source}, steps, env)
  except Exception as e:  # the harness itself must survive anything one program does
    return 'runtime_error', f'[sandbox error: {type(e).__name__}: {e}]'
  out = (r.stdout + r.stderr).replace(token, CHECKS_DONE)[-TAIL_CHARS:]
  if r.outcome == 'passed' and token not in r.stdout:
    return 'failed', sandbox.note(out, 'exit status 0 before the last check ran')
  if r.outcome == 'failed' and r.returncode != FAILED_EXIT_CODE and not (
      lang.failure_marker and lang.failure_marker in r.stdout + r.stderr):
    # A crash, not a failed check.
    return 'runtime_error', sandbox.note(out, f'exit status {r.returncode}, not a failed '
                                              f"check's {FAILED_EXIT_CODE}")
  return r.outcome, out
