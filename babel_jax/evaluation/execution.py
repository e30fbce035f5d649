"""Runs one assembled program with plain subprocesses and timeouts (no sandbox: trusted code only).

`run_program` is the single entry point, kept small so a sandboxed runner can replace it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from babel_jax.evaluation.harness import FAILED_EXIT_CODE
from babel_jax.evaluation.languages import LANGUAGES

OUTCOMES = ('passed', 'failed', 'compile_error', 'timeout', 'runtime_error')
TAIL_CHARS = 2000


def _run(argv: list[str], cwd: str, env: dict, timeout_s: float):
  """(returncode or None on timeout, combined output); a timeout kills the whole process group."""
  proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
  try:
    out, _ = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode('utf-8', 'replace')
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    return None, out.decode('utf-8', 'replace')


def run_program(language: str, source: str, timeout_s: float = 10.0,
                compile_timeout_s: float = 60.0) -> tuple[str, str]:
  """Compiles (where needed) and runs `source`: (outcome, tail of stdout+stderr).

  outcome: passed, failed (a test check failed), compile_error, timeout, runtime_error.
  """
  lang = LANGUAGES[language]
  with tempfile.TemporaryDirectory(prefix=f'babel_{language}_') as tmp:
    path = os.path.join(tmp, lang.file_name)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(source)
    fill = lambda arg: arg.replace('{dir}', tmp).replace('{file}', path)  # noqa: E731
    # No LD_PRELOAD: the launch scripts preload tcmalloc for JAX, and toolchains such as php
    # can crash with an allocator they were not built for.
    base = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
    env = dict(base, **{key: fill(value) for key, value in lang.env})
    if lang.compile:
      code, out = _run([fill(a) for a in lang.compile], tmp, env, compile_timeout_s)
      if code is None:
        return 'timeout', out[-TAIL_CHARS:]
      if code != 0:
        return 'compile_error', out[-TAIL_CHARS:]
    code, out = _run([fill(a) for a in lang.run], tmp, env, timeout_s)
  if code is None:
    return 'timeout', out[-TAIL_CHARS:]
  if code == 0:
    return 'passed', out[-TAIL_CHARS:]
  if code == FAILED_EXIT_CODE or (lang.failure_marker and lang.failure_marker in out):
    return 'failed', out[-TAIL_CHARS:]
  return 'runtime_error', out[-TAIL_CHARS:]
