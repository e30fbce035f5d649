"""Runs untrusted generated programs: own directory, limits, no network, everything killed after.

Each program gets a fresh directory and, where the machine allows (root on Linux), its own
unprivileged uid, a private network namespace (no network) and a private mount namespace with
fresh /tmp, /var/tmp and /dev/shm (nothing written there outlives it). Limits: CPU seconds,
address space, processes (per uid, so a fork bomb stops there), file size, output bytes, wall
time per step. At the end the process group, and every process of the sandbox uid, is killed.
Without root only the rlimits, the process group and the timeouts apply (`isolation()` says).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import sys
import time
from typing import Sequence

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BASE_UID = 61000  # sandbox uids: _BASE_UID + slot (no passwd entry needed)
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

OUTCOMES = ('passed', 'failed', 'compile_error', 'timeout', 'runtime_error')


@dataclasses.dataclass(frozen=True)
class Limits:
  cpu_s: int = 10
  memory_mb: int = 2048  # address space; JVM / mono / Go runtimes need ~1-2 GB of it
  processes: int = 256  # per sandbox uid (threads count too)
  file_mb: int = 64
  output_bytes: int = 1 << 20  # stdout + stderr kept per step; more kills the program


@dataclasses.dataclass(frozen=True)
class Step:
  argv: Sequence[str]
  timeout_s: float
  compile: bool = False  # a failing compile step is a compile_error


@dataclasses.dataclass
class Result:
  outcome: str
  stage: str  # 'compile' or 'run'
  returncode: int | None
  stdout: str
  stderr: str
  seconds: float


def isolation() -> str:
  """'full' (own uid, network and mount namespaces) when root on Linux, else 'rlimits'."""
  return 'full' if os.geteuid() == 0 and sys.platform.startswith('linux') else 'rlimits'


def _uid_processes(uid: int) -> list[int]:
  """Live (not zombie) processes whose real uid is `uid`, from /proc."""
  out = []
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        with open(f'/proc/{entry}/status') as f:
          status = f.read()
      except OSError:
        continue
      fields = dict(line.split(':', 1) for line in status.splitlines() if ':' in line)
      if fields.get('Uid', '').split()[:1] == [str(uid)] and 'zombie' not in fields.get('State', ''):
        out.append(int(entry))
  return out


def _kill_uid(uid: int, patience_s: float = 5.0) -> None:
  """Kills every process running as `uid` (escaped children included), until none is left."""
  deadline = time.time() + patience_s
  while True:
    pids = _uid_processes(uid)
    if not pids or time.time() > deadline:
      return
    for pid in pids:
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    time.sleep(0.02)


def _read_capped(stream, cap: int, out: list, over: threading.Event) -> None:
  total = 0
  while True:
    chunk = stream.read(65536)
    if not chunk:
      return
    if total < cap:
      out.append(chunk[:cap - total])
    total += len(chunk)
    if total > cap:
      over.set()


class Sandbox:
  """Runs programs with `Limits`; `slot` picks the uid, so parallel workers use distinct slots."""

  def __init__(self, limits: Limits = Limits(), root: str | None = None, slot: int = 0):
    self.limits = limits
    self.full = isolation() == 'full'
    self.uid = _BASE_UID + slot if self.full else None
    # Outside /tmp: the private mount namespace puts an empty tmpfs there. Parents must be
    # traversable by the sandbox uid.
    self.root = root or ('/var/lib/babel_jax_sandbox' if self.full else tempfile.gettempdir())
    os.makedirs(self.root, mode=0o711, exist_ok=True)

  def run(self, files: dict[str, str], steps: Sequence[Step],
          env: dict[str, str] | None = None) -> Result:
    """Writes `files` to a fresh directory and runs `steps` there in order; '{dir}' in a
    step's argv or in `env` values stands for that directory."""
    workdir = tempfile.mkdtemp(prefix='sandbox_', dir=self.root)
    fill = lambda text: text.replace('{dir}', workdir)  # noqa: E731
    steps = [dataclasses.replace(st, argv=[fill(a) for a in st.argv]) for st in steps]
    env = {k: fill(v) for k, v in (env or {}).items()}
    try:
      for name, text in files.items():
        with open(os.path.join(workdir, name), 'w') as f:
          f.write(text)
      if self.uid is not None:
        os.chown(workdir, self.uid, self.uid)
        for name in files:
          os.chown(os.path.join(workdir, name), self.uid, self.uid)
      # System toolchains only: per-user installs (pyenv under /root) are not visible to the
      # sandbox uid.
      path = SYSTEM_PATH if self.full else os.environ.get('PATH', SYSTEM_PATH)
      base_env = {'PATH': path, 'HOME': workdir,
                  'TMPDIR': workdir, 'LANG': 'C.UTF-8', **env}
      t0 = time.perf_counter()
      for step in steps:
        result = self._step(step, workdir, base_env)
        if result.outcome != 'passed':
          result.seconds = time.perf_counter() - t0
          return result
      return Result('passed', 'run', 0, result.stdout, result.stderr, time.perf_counter() - t0)
    finally:
      if self.uid is not None:
        _kill_uid(self.uid)
      shutil.rmtree(workdir, ignore_errors=True)

  def _step(self, step: Step, workdir: str, env: dict[str, str]) -> Result:
    stage = 'compile' if step.compile else 'run'
    t = time.perf_counter()
    # The confinement happens in a fresh launcher process (jail.py), not between fork and exec
    # of this (multithreaded) process.
    launcher = [sys.executable, '-m', 'babel_jax.evaluation.jail',
                json.dumps(dataclasses.asdict(self.limits)),
                str(-1 if self.uid is None else self.uid), workdir, '--', *step.argv]
    proc = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**env, 'PYTHONPATH': _PACKAGE_ROOT},
                            start_new_session=True)
    out, err, over = [], [], threading.Event()
    readers = [threading.Thread(target=_read_capped, args=(s, self.limits.output_bytes, buf, over),
                                daemon=True) for s, buf in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
      r.start()
    timed_out = False
    deadline = t + step.timeout_s
    while proc.poll() is None:
      if over.is_set() or time.perf_counter() > deadline:
        timed_out = not over.is_set()
        break
      time.sleep(0.01)
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
    for r in readers:
      r.join(timeout=5)
    stdout = b''.join(out).decode('utf-8', 'replace')
    stderr = b''.join(err).decode('utf-8', 'replace')
    rc = proc.returncode
    if timed_out:
      outcome = 'timeout'
    elif over.is_set():
      outcome = 'runtime_error'
      stderr += f'\n[sandbox: output over {self.limits.output_bytes} bytes, killed]'
    elif rc == 0:
      outcome = 'passed'
    elif step.compile:
      outcome = 'compile_error'
    elif rc < 0 and -rc == signal.SIGXCPU:
      outcome = 'timeout'
    elif rc < 0 or 'MemoryError' in stderr or 'out of memory' in stderr.lower():
      outcome = 'runtime_error'
    else:
      outcome = 'failed'
    return Result(outcome, stage, rc, stdout[-4000:], stderr[-4000:], time.perf_counter() - t)
