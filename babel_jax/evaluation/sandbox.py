"""Runs untrusted generated programs: own directory, limits, no network, everything killed after.

Isolation levels (`isolation()` says which applies; `isolation_note()` says what it means):

* 'full' (root, bubblewrap usable): each program gets a "box", a tmpfs of `Limits.disk_mb` MB
  and `Limits.inodes` files mounted for it alone, holding its directory and its private /tmp,
  /var/tmp and /dev/shm, so the total it can write is capped. Each step runs under the slot's own
  uid inside bubblewrap (jail.py): new user, pid, network, ipc and uts namespaces, the host file
  system bound read-only, only the box's directories writable, a minimal /dev, no capabilities.
* 'namespaces' (root, no usable bubblewrap): the same box, uid and rlimits, with the hand-written
  network and mount namespaces (private temporary directories on the box); the rest of the host
  file system is as writable for the uid as it is outside (world-writable directories).
* 'rlimits' (not root, or no mount namespaces): rlimits, process-group kill and timeouts only,
  in a plain temporary directory; as root the program still runs under its own uid.

Limits in every level: CPU seconds, address space, processes (per uid, so a fork bomb stops
there), file size, output bytes, wall time per step. At the end the process group, and every
process of the sandbox uid, is killed.

Uids are machine-wide: a program runs under the uid of a slot its process holds (an exclusive
flock on SLOTS_DIR/<slot>, which the kernel drops when the holder dies), so two evaluations on
one machine never share a uid, and the end of one never kills the other's programs.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import sys
import time
from typing import Iterator, Sequence

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BASE_UID = 61000  # sandbox uids: _BASE_UID + slot (no passwd entry needed)
_PROBE_SLOT = 1000  # the uid that probes the isolation level, apart from the workers' slots
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
_JAIL_SETUP_TRIES = 3
DEFAULT_ROOT = '/var/lib/babel_jax_sandbox'  # outside /tmp, which the jail replaces
SLOTS_DIR = os.path.join(DEFAULT_ROOT, 'slots')  # root-only: one lock file per uid slot
MAX_SLOTS = 64  # programs that may run at once on a machine, all processes together
PRIVATE_TEMP = ('/tmp', '/var/tmp', '/dev/shm')  # each a directory of the program's box
LEVELS = ('full', 'namespaces', 'rlimits')

OUTCOMES = ('passed', 'failed', 'compile_error', 'timeout', 'runtime_error')

MS_NOSUID, MS_NODEV, MNT_DETACH = 0x2, 0x4, 0x2


@dataclasses.dataclass(frozen=True)
class Limits:
  cpu_s: int = 10
  memory_mb: int = 2048  # address space; JVM / mono / Go runtimes need ~1-2 GB of it
  processes: int = 256  # per sandbox uid (threads count too)
  file_mb: int = 64
  output_bytes: int = 1 << 20  # stdout + stderr kept per step; more kills the program
  disk_mb: int = 256  # all the program writes: its directory and private /tmp (box levels)
  inodes: int = 16384  # files and directories it may create there


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


_probe_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[str, str]:
  """(level, why not better): the best level that runs `true` on this machine."""
  if not sys.platform.startswith('linux'):
    return 'rlimits', 'not Linux'
  if os.geteuid() != 0:
    return 'rlimits', 'not root (own uid, namespaces and the box need root)'
  _sweep_stale_boxes(DEFAULT_ROOT)
  reasons = []
  for level in ('full', 'namespaces'):
    if level == 'full' and not shutil.which('bwrap', path=SYSTEM_PATH):
      reasons.append('bubblewrap is not installed (apt-get install bubblewrap)')
      continue
    try:
      r = Sandbox(Limits(), slot=_PROBE_SLOT, level=level).run({}, [Step(['true'], 30)])
      if r.outcome == 'passed':
        return level, '; '.join(reasons)
      reasons.append(f'{level} level fails: ' + ' '.join(r.stderr.split())[-300:])
    except OSError as e:
      reasons.append(f'{level} level fails: {e}')
  return 'rlimits', '; '.join(reasons)


def isolation() -> str:
  """The level programs run under here: 'full', 'namespaces' or 'rlimits' (see the module)."""
  with _probe_lock:
    return _probe()[0]


def isolation_note() -> str:
  """One line for the log: the level, what it guarantees, and why not a better one."""
  with _probe_lock:
    level, why = _probe()
  what = {
      'full': 'bubblewrap: own uid; no network; own pid, ipc, uts and user namespaces; host file '
              'system read-only; writable only the program directory and private /tmp, '
              '/var/tmp, /dev/shm in one capped tmpfs',
      'namespaces': 'own uid; no network; program directory and private /tmp, /var/tmp, '
                    '/dev/shm in one capped tmpfs; OTHER WORLD-WRITABLE HOST DIRECTORIES STAY '
                    'WRITABLE',
      'rlimits': 'rlimits, timeouts and process-group kill only; the program can write wherever '
                 + ('its uid' if os.geteuid() == 0 else 'this user') + ' can, with no total cap',
  }[level]
  return f'{level} ({what})' + (f'; not better because {why}' if why else '')


def _libc():
  return ctypes.CDLL(None, use_errno=True)


def _mount_box(box: str, uid: int, limits: Limits) -> None:
  """A tmpfs only `uid` can enter, capped at limits.disk_mb MB and limits.inodes files."""
  options = f'size={limits.disk_mb}m,nr_inodes={limits.inodes},mode=0700,uid={uid},gid={uid}'
  if _libc().mount(b'tmpfs', box.encode(), b'tmpfs', MS_NOSUID | MS_NODEV,
                   options.encode()) != 0:
    errno = ctypes.get_errno()
    raise OSError(errno, f'cannot mount the program box (tmpfs) on {box}: {os.strerror(errno)}')


def _unmount_box(box: str) -> None:
  _libc().umount2(box.encode(), MNT_DETACH)
  os.rmdir(box)


def _sweep_stale_boxes(root: str) -> None:
  """Unmounts and removes boxes left by harness processes that died mid-run."""
  if not os.path.isdir(root):
    return
  for name in os.listdir(root):
    match = re.fullmatch(r'box_(\d+)_\w+', name)
    if match and not os.path.exists(f'/proc/{match.group(1)}'):
      path = os.path.join(root, name)
      _libc().umount2(path.encode(), MNT_DETACH)
      shutil.rmtree(path, ignore_errors=True)


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


def _slots_dir() -> str:
  os.makedirs(SLOTS_DIR, mode=0o700, exist_ok=True)
  st = os.lstat(SLOTS_DIR)
  if not os.path.isdir(SLOTS_DIR) or os.path.islink(SLOTS_DIR) or st.st_uid != os.geteuid():
    raise OSError(f'{SLOTS_DIR} must be a directory owned by uid {os.geteuid()}')
  return SLOTS_DIR


@contextlib.contextmanager
def hold_slot(slot: int | None = None, poll_s: float = 0.05) -> Iterator[int]:
  """Holds a uid slot that no other holder on this machine has until the block ends: `slot`
  (waiting for it), or else the first free one of MAX_SLOTS (waiting while all are taken)."""
  directory = _slots_dir()
  candidates = range(MAX_SLOTS) if slot is None else (slot,)
  while True:
    for s in candidates:
      fd = os.open(os.path.join(directory, str(s)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        os.close(fd)
        continue
      try:
        yield s
      finally:
        os.close(fd)  # releases the lock
      return
    time.sleep(poll_s)


def _signal_name(number: int) -> str:
  """'SIGSEGV' for 11; 'signal 99' for a number Python does not name."""
  try:
    return signal.Signals(number).name
  except ValueError:
    return f'signal {number}'


def note(stderr: str, text: str) -> str:
  """`stderr` with the line '[sandbox: TEXT]' appended: why the sandbox ended or judged a step,
  which the program's own output may not say (a crash by signal prints nothing)."""
  return stderr + ('\n' if stderr and not stderr.endswith('\n') else '') + f'[sandbox: {text}]\n'


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
  """Runs programs with `Limits`. As root each program runs under the uid of a slot held for
  the run (see `hold_slot`): `slot` asks for that one, None for any free one.

  `level` forces an isolation level (tests); by default the best this machine supports.
  """

  def __init__(self, limits: Limits = Limits(), root: str | None = None,
               slot: int | None = None, level: str | None = None):
    if level is not None and level not in LEVELS:
      raise ValueError(f'sandbox level {level!r}; have {LEVELS}')
    self.limits = limits
    self.level = level or isolation()
    self.boxed = self.level != 'rlimits'  # a capped tmpfs per program
    self.slot = slot
    self.own_uid = os.geteuid() == 0  # programs run under a slot's uid, not this user's
    # Parents must be traversable by the sandbox uid.
    self.root = root or (DEFAULT_ROOT if self.own_uid else tempfile.gettempdir())
    os.makedirs(self.root, mode=0o711, exist_ok=True)

  def run(self, files: dict[str, str], steps: Sequence[Step],
          env: dict[str, str] | None = None) -> Result:
    """Writes `files` to a fresh directory and runs `steps` there in order; '{dir}' in a
    step's argv or in `env` values stands for that directory."""
    if not self.own_uid:
      return self._run(files, steps, env, None)
    with hold_slot(self.slot) as slot:
      uid = _BASE_UID + slot
      _kill_uid(uid)  # what a holder that died mid-run left behind
      return self._run(files, steps, env, uid)

  def _run(self, files: dict[str, str], steps: Sequence[Step], env: dict[str, str] | None,
           uid: int | None) -> Result:
    box = tempfile.mkdtemp(prefix=f'box_{os.getpid()}_', dir=self.root)
    mounted = False
    try:
      if self.boxed:
        _mount_box(box, uid, self.limits)
        mounted = True
      workdir = os.path.join(box, 'work') if self.boxed else box
      temp = {d: os.path.join(box, 'temp' + d.replace('/', '_')) for d in PRIVATE_TEMP
              if self.boxed and os.path.isdir(d)}
      for d in ([workdir] if self.boxed else []) + list(temp.values()):
        os.mkdir(d, 0o700)
      fill = lambda text: text.replace('{dir}', workdir)  # noqa: E731
      steps = [dataclasses.replace(st, argv=[fill(a) for a in st.argv]) for st in steps]
      env = {k: fill(v) for k, v in (env or {}).items()}
      for name, text in files.items():
        with open(os.path.join(workdir, name), 'w') as f:
          f.write(text)
      if uid is not None:
        for path in [workdir, *temp.values(), *(os.path.join(workdir, n) for n in files)]:
          os.chown(path, uid, uid)
      # System toolchains only: per-user installs (pyenv under /root) are not visible to the
      # sandbox uid.
      path = SYSTEM_PATH if uid is not None else os.environ.get('PATH', SYSTEM_PATH)
      base_env = {'PATH': path, 'HOME': workdir,
                  'TMPDIR': workdir, 'LANG': 'C.UTF-8', **env}
      spec = {'level': self.level, 'limits': dataclasses.asdict(self.limits),
              'uid': -1 if uid is None else uid, 'workdir': workdir, 'temp': temp,
              'bwrap': shutil.which('bwrap', path=SYSTEM_PATH)}
      t0 = time.perf_counter()
      for step in steps:
        result = self._step(step, spec, base_env)
        if result.outcome != 'passed':
          result.seconds = time.perf_counter() - t0
          return result
      return Result('passed', 'run', 0, result.stdout, result.stderr, time.perf_counter() - t0)
    finally:
      if uid is not None:
        _kill_uid(uid)
      if mounted:
        _unmount_box(box)
      else:
        shutil.rmtree(box, ignore_errors=True)

  def _launch(self, step: Step, spec: dict, env: dict[str, str], deadline: float):
    """Runs one step in a fresh jail; (process, stdout, stderr, timed out, output over cap)."""
    # The confinement happens in a fresh launcher process (jail.py), not between fork and exec
    # of this (multithreaded) process.
    launcher = [sys.executable, '-m', 'babel_jax.evaluation.jail', json.dumps(spec), '--',
                *step.argv]
    proc = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**env, 'PYTHONPATH': _PACKAGE_ROOT},
                            start_new_session=True)
    out, err, over = [], [], threading.Event()
    readers = [threading.Thread(target=_read_capped, args=(s, self.limits.output_bytes, buf, over),
                                daemon=True) for s, buf in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
      r.start()
    timed_out = False
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
    return (proc, b''.join(out).decode('utf-8', 'replace'),
            b''.join(err).decode('utf-8', 'replace'), timed_out, over)

  def _step(self, step: Step, spec: dict, env: dict[str, str]) -> Result:
    stage = 'compile' if step.compile else 'run'
    t = time.perf_counter()
    for attempt in range(_JAIL_SETUP_TRIES):
      proc, stdout, stderr, timed_out, over = self._launch(step, spec, env, t + step.timeout_s)
      # bubblewrap copies the host's mounts into the jail; a box that a concurrent program
      # unmounts meanwhile fails the copy ("bwrap: Can't bind mount ...") before anything ran.
      setup_failed = (self.level == 'full' and proc.returncode == 1 and not stdout and
                      not timed_out and stderr.startswith('bwrap: '))
      if not setup_failed or attempt == _JAIL_SETUP_TRIES - 1:
        break
      time.sleep(0.05 * (attempt + 1))
    rc = proc.returncode
    if self.level == 'full' and rc > 128:
      rc = 128 - rc  # bubblewrap reports a program killed by signal N as exit status 128 + N
    if timed_out:
      stderr = note(stderr, f'over the {step.timeout_s:g} s time limit, killed')
    elif over.is_set():
      stderr = note(stderr, f'output over {self.limits.output_bytes} bytes, killed')
    elif rc < 0:  # a crash (SIGSEGV, SIGABRT, the SIGILL of a trap) often prints nothing itself
      stderr = note(stderr, f'killed by signal {-rc} ({_signal_name(-rc)})')
    if timed_out:
      outcome = 'timeout'
    elif over.is_set():
      outcome = 'runtime_error'
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
