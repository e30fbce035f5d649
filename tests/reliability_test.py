"""Reliability of the sandbox: hostile programs leave nothing on the host, what a program writes
is capped in total, an early exit is never a pass, runaway programs stay contained, and two
processes on one machine never share a sandbox uid.

Every case asserts on the outcome and on what is left afterwards: marker files anywhere on the
host (a bounded scan: every directory down to depth 4, which holds every world-writable one, and
every path the program tried), the program's box and mount, processes of its uid, SysV shared
memory.
"""

from tests import testing  # noqa: F401  (first: fake devices)

import concurrent.futures
import ctypes
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from unittest import mock

from absl.testing import absltest

from babel_jax.evaluation import execution, sandbox, validate
from babel_jax.evaluation.harness import CHECKS_DONE
from babel_jax.evaluation.languages import LANGUAGES, program

PY = shutil.which('python3', path=sandbox.SYSTEM_PATH) or '/usr/bin/python3'
ROOT = os.geteuid() == 0
LEVEL = sandbox.isolation()
SCAN_DEPTH = 4  # /var/lib/babel_jax_sandbox/box_* is at depth 4, world-writable dirs higher up
_SKIP_SCAN = ('/proc', '/sys')
_LIMITS = dict(cpu_s=2, memory_mb=512, processes=64, output_bytes=1 << 16)


def _directories(depth: int = SCAN_DEPTH) -> list[str]:
  """Every directory down to `depth` (symlinks not followed, /proc and /sys skipped)."""
  found, frontier = ['/'], ['/']
  for _ in range(depth):
    below = []
    for parent in frontier:
      try:
        entries = list(os.scandir(parent))
      except OSError:
        continue
      below += [e.path for e in entries if e.is_dir(follow_symlinks=False)
                and e.path not in _SKIP_SCAN]
    found += below
    frontier = below
  return found


def _world_writable(dirs: list[str]) -> list[str]:
  out = []
  for d in dirs:
    try:
      if os.lstat(d).st_mode & stat.S_IWOTH:
        out.append(d)
    except OSError:
      pass
  return out


# Tries to leave a marker file and directory in every directory it sees down to SCAN_DEPTH and in
# the named targets (the host's $HOME, the repository, the sandbox root, its own parents, ...);
# prints the paths it managed to create.
_LEAVE_MARKERS = r'''
import json, os, sys
marker, targets, depth = json.loads(sys.argv[1])
dirs, frontier = ['/'], ['/']
for _ in range(depth):
  below = []
  for parent in frontier:
    try:
      below += [e.path for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)
                and e.path not in ('/proc', '/sys')]
    except OSError:
      pass
  dirs += below
  frontier = below
cwd = os.getcwd()
dirs += targets + [cwd, os.path.dirname(cwd), os.path.dirname(os.path.dirname(cwd))]
written = []
for d in sorted(set(dirs)):
  for make in (lambda p: open(p, 'x').close(), os.mkdir):
    path = os.path.join(d, marker + ('' if make is os.mkdir else '.file'))
    try:
      make(path)
      written.append(path)
    except OSError:
      pass
print(json.dumps(written))
'''

# A daemon that outlives the program, then tries to write markers.
_DAEMON = r'''
import os, sys, time
marker = sys.argv[1]
if os.fork() == 0:
  os.setsid()
  if os.fork() == 0:
    time.sleep(1.0)
    for d in ('/tmp', '/var/tmp', '/dev/shm', '/run/lock', os.getcwd()):
      try:
        open(os.path.join(d, marker), 'w').write('x')
      except OSError:
        pass
    time.sleep(30)
  os._exit(0)
'''

# Writes 1 MB files into `where` until the file system refuses; prints MB written and the errno.
_FILL = r'''
import errno, json, os, sys
where, size = sys.argv[1].split(','), int(sys.argv[2])
written, error, n = 0, None, 0
for d in where:
  try:
    while True:
      with open(os.path.join(d, f'f{n}'), 'wb') as f:
        n += 1
        f.write(b'x' * size)
      written += size
  except OSError as e:
    error = errno.errorcode.get(e.errno)
print(json.dumps({'bytes': written, 'files': n, 'error': error}))
'''

# Creates shared memory that would outlive the program without an ipc namespace.
_SYSV_SHM = r'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert libc.shmget(0, 1 << 20, 0o1000 | 0o600) >= 0  # IPC_PRIVATE, IPC_CREAT
'''


def _box_run(code: str, args=(), slot: int | None = 0, level: str | None = None, timeout_s=5.0,
             **limits) -> sandbox.Result:
  box = sandbox.Sandbox(sandbox.Limits(**{**_LIMITS, **limits}), slot=slot, level=level)
  return box.run({'main.py': code}, [sandbox.Step([PY, 'main.py', *args], timeout_s)])


class LeftoversMixin:
  """Assertions on what a run leaves behind."""

  def assertNothingLeft(self, slots=(0,)):
    for slot in slots:
      if os.geteuid() != 0:  # programs ran under this user's own uid: no slot uids to check
        break
      # Held, the slot is ours: a program another test worker runs under it meanwhile has ended
      # (and been reaped) first, so whatever still runs under its uid escaped a sandbox.
      with sandbox.hold_slot(slot):
        self.assertEqual(sandbox._uid_processes(sandbox._BASE_UID + slot), [], f'slot {slot}')
    root = sandbox.DEFAULT_ROOT if ROOT else '/tmp'
    mine = f'box_{os.getpid()}_'
    self.assertEqual([n for n in os.listdir(root) if n.startswith(mine)], [])
    with open('/proc/self/mountinfo') as f:
      self.assertNotIn(os.path.join(root, mine), f.read())

  def assertNoMarker(self, marker: str, dirs):
    left = [os.path.join(d, m) for d in dirs for m in (marker, marker + '.file')
            if os.path.lexists(os.path.join(d, m))]
    for path in left:  # clean up before failing
      shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    self.assertEqual(left, [], 'marker files outlived the sandbox')


class HostUntouchedTest(LeftoversMixin, absltest.TestCase):

  def setUp(self):
    super().setUp()
    if LEVEL != 'full':
      self.skipTest(f'isolation level here is {LEVEL!r}: only the full level keeps the host '
                    f'read-only ({sandbox.isolation_note()})')

  def test_markers_left_anywhere_do_not_outlive_the_program(self):
    marker = 'babel_marker_' + secrets.token_hex(6)
    home = os.path.expanduser('~')
    targets = [home, testing.REPO, os.path.join(testing.REPO, 'tests'), sandbox.DEFAULT_ROOT,
               os.path.dirname(testing.REPO), '/etc', '/var/lib', '/run', '/tmp', '/var/tmp',
               '/dev/shm']
    host_dirs = _directories()
    host_writable = _world_writable(host_dirs)
    self.assertIn('/tmp', host_writable)
    r = _box_run(_LEAVE_MARKERS, [json.dumps([marker, targets, SCAN_DEPTH])], timeout_s=60,
                 cpu_s=60)
    # No marker is on the host: not in a world-writable directory, nor anywhere the program
    # tried (every directory down to the scan depth, the targets).
    self.assertNoMarker(marker, sorted(set(host_dirs + host_writable + targets)))
    self.assertNothingLeft()
    self.assertEqual(r.outcome, 'passed', r.stderr)
    written = json.loads(r.stdout)
    # Inside, only its own directory and private temporary directories took them.
    self.assertNotEmpty(written)
    for path in written:
      self.assertTrue(path.startswith(sandbox.DEFAULT_ROOT + '/box_') and '/work/' in path
                      or os.path.dirname(path) in sandbox.PRIVATE_TEMP, path)

  def test_daemons_and_shared_memory_die_with_the_program(self):
    marker = 'babel_daemon_' + secrets.token_hex(6)
    shm_before = _sysv_shm_uids()
    daemon = _box_run(_DAEMON, [marker], slot=1)
    shm = _box_run(_SYSV_SHM, slot=2)
    self.assertEqual((daemon.outcome, shm.outcome), ('passed', 'passed'), shm.stderr)
    time.sleep(1.5)  # the daemon would have written by now
    self.assertNoMarker(marker, ['/tmp', '/var/tmp', '/dev/shm', '/run/lock'])
    self.assertNothingLeft(slots=(1, 2))
    leaked = _sysv_shm_uids() - shm_before
    libc = ctypes.CDLL(None)
    for shmid, _ in leaked:
      libc.shmctl(shmid, 0, None)  # IPC_RMID: clean up before failing
    self.assertEqual(leaked, set())


def _sysv_shm_uids() -> set[tuple[int, int]]:
  """(shmid, uid) of the host's SysV shared memory segments."""
  with open('/proc/sysvipc/shm') as f:
    header, *rows = f.read().splitlines()
  key = header.split()
  return {(int(row.split()[key.index('shmid')]), int(row.split()[key.index('uid')]))
          for row in rows}


class TotalWriteCapTest(LeftoversMixin, absltest.TestCase):
  """Many files, each under the per-file limit, cannot add up to more than the box holds."""

  def _fill(self, level: str, where: str, size: int, **limits):
    r = _box_run(_FILL, [where, str(size)], level=level, timeout_s=30, cpu_s=20, **limits)
    self.assertEqual(r.outcome, 'passed', r.stderr)
    return json.loads(r.stdout)

  def test_bytes_and_files_are_capped_per_program(self):
    if not ROOT:
      self.skipTest('not root: no box, so no total cap (only the per-file limit)')
    for level in ('full', 'namespaces') if LEVEL == 'full' else (LEVEL,):
      if level == 'rlimits':
        self.skipTest(f'no box at level {level!r}: {sandbox.isolation_note()}')
      # 1 MB files into its directory, then /tmp, then /dev/shm: 16 MB in all.
      got = self._fill(level, '.,/tmp,/var/tmp,/dev/shm', 1 << 20, disk_mb=16, file_mb=8)
      self.assertEqual(got['error'], 'ENOSPC', (level, got))
      self.assertBetween(got['bytes'], 12 << 20, 16 << 20)
      # Empty files: the inode cap stops them.
      got = self._fill(level, '.,/tmp', 0, inodes=300)
      self.assertEqual(got['error'], 'ENOSPC', (level, got))
      self.assertBetween(got['files'], 250, 301)
      self.assertNothingLeft()
    # One file over the per-file limit.
    got = self._fill(LEVEL, '.', 10 << 20, disk_mb=64, file_mb=8)
    self.assertEqual((got['bytes'], got['error']), (0, 'EFBIG'))

  def test_private_temp_is_not_the_hosts(self):
    if not ROOT:
      self.skipTest('not root: /tmp is the host\'s')
    marker = 'babel_tmp_' + secrets.token_hex(6)
    for level in ('full', 'namespaces') if LEVEL == 'full' else (LEVEL,):
      if level == 'rlimits':
        self.skipTest(f'level {level!r} has no private /tmp: {sandbox.isolation_note()}')
      code = ''.join(f'open({os.path.join(d, marker)!r}, "w").write("x")\n'
                     for d in sandbox.PRIVATE_TEMP)
      self.assertEqual(_box_run(code, level=level).outcome, 'passed', level)
      self.assertNoMarker(marker, sandbox.PRIVATE_TEMP)


class RunawayProgramsTest(LeftoversMixin, absltest.TestCase):
  """The classic cases, run side by side on distinct slots, each recorded and cleaned up."""

  def test_runaway_programs_are_contained(self):
    cases = {  # name: (code, timeout_s, allowed outcomes)
        'infinite loop': ('while True: pass', 5, {'timeout'}),
        'sleep': ('import time; time.sleep(60)', 1, {'timeout'}),
        'fork bomb': ('import os\nwhile True:\n  try: os.fork()\n  except OSError: pass', 2,
                      {'timeout', 'runtime_error'}),
        'memory': ('x = bytearray(4 * 1024**3)', 5, {'runtime_error'}),
        'output flood': ('import sys\nwhile True: sys.stdout.write("x" * 65536)', 5,
                         {'runtime_error'}),
        'write outside': ('open("../../escaped", "w").write("x")', 5, {'failed'}),
    }
    if ROOT:
      cases['network'] = ('import socket\nsocket.create_connection(("1.1.1.1", 80), timeout=2)',
                          5, {'failed'})
    t = time.time()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
      results = dict(zip(cases, pool.map(
          lambda item: _box_run(item[1][0], timeout_s=item[1][1], slot=10 + item[0]),
          enumerate(cases.values()))))
    self.assertLess(time.time() - t, 30)
    for name, (_, _, allowed) in cases.items():
      self.assertIn(results[name].outcome, allowed, f'{name}: {results[name].stderr[-300:]}')
    self.assertLessEqual(len(results['output flood'].stdout), 1 << 16)
    if ROOT:
      self.assertIn('unreachable', results['network'].stderr)
    for parent in (sandbox.DEFAULT_ROOT, os.path.dirname(sandbox.DEFAULT_ROOT), '/tmp', '/'):
      self.assertFalse(os.path.exists(os.path.join(parent, 'escaped')), parent)
    self.assertNothingLeft(slots=range(10, 10 + len(cases)))


# Another process: runs one program that is alive for a while, prints its outcome and output.
_OTHER_EVALUATION = r'''
import json, sys
from babel_jax.evaluation import sandbox
code = 'import time; time.sleep(2.5); print("still alive")'
r = sandbox.Sandbox(sandbox.Limits(cpu_s=10, memory_mb=512, processes=64)).run(
    {'main.py': code}, [sandbox.Step([sys.argv[1], 'main.py'], 30)])
print(json.dumps([r.outcome, r.stdout]))
'''


def _program_of(parent: int) -> int | None:
  """The pid of a `main.py` that `parent` started, running under a sandbox uid, if any."""
  low, high = sandbox._BASE_UID, sandbox._BASE_UID + sandbox.MAX_SLOTS
  ppid, program = {}, []
  for entry in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{entry}/status') as f:
        status = dict(l.split(':', 1) for l in f.read().splitlines() if ':' in l)
      with open(f'/proc/{entry}/cmdline', 'rb') as f:
        cmdline = f.read()
    except OSError:
      continue
    ppid[int(entry)] = int(status['PPid'])
    if low <= int(status['Uid'].split()[0]) < high and b'main.py' in cmdline:
      program.append(int(entry))
  for pid in program:
    ancestor = pid
    while ancestor > 1:
      ancestor = ppid.get(ancestor, 0)
      if ancestor == parent:
        return pid
  return None


class MachineWideSlotsTest(LeftoversMixin, absltest.TestCase):
  """Two processes on one machine (two evaluations) never hold one sandbox uid at once, so the
  end of one run, which kills every process of its uid, never kills the other's programs."""

  def setUp(self):
    super().setUp()
    if not ROOT:
      self.skipTest('not root: programs run as this user, there are no sandbox uids to share')

  def _other(self, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', code, *args], cwd=testing.REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

  def test_a_held_slot_is_not_handed_to_another_process(self):
    take = ('import sys\nfrom babel_jax.evaluation import sandbox\n'
            'with sandbox.hold_slot(None if sys.argv[1] == "any" else int(sys.argv[1])) as s:\n'
            '  print(s, flush=True)\n')
    with sandbox.hold_slot(0) as mine:
      self.assertEqual(mine, 0)
      other_any = self._other(take, 'any')
      other_zero = self._other(take, '0')
      self.assertNotEqual(other_any.communicate(timeout=60)[0].strip(), '0')
      time.sleep(1.0)
      self.assertIsNone(other_zero.poll(), 'slot 0 was handed out while held')
    self.assertEqual(other_zero.communicate(timeout=60)[0].strip(), '0')

  def test_the_end_of_a_run_leaves_another_process_programs_alive(self):
    other = self._other(_OTHER_EVALUATION, PY)
    deadline = time.time() + 30
    while _program_of(other.pid) is None and time.time() < deadline:
      time.sleep(0.05)
    self.assertIsNotNone(_program_of(other.pid), 'the other program did not start')
    mine = _box_run('print("short")', slot=None)  # ends, and kills its uid, while the other runs
    out, err = other.communicate(timeout=60)
    self.assertEqual(mine.outcome, 'passed', mine.stderr)
    self.assertEqual(json.loads(out.splitlines()[-1]), ['passed', 'still alive\n'], err[-2000:])


class JailSetupTest(LeftoversMixin, absltest.TestCase):
  """A jail that fails to set up (bubblewrap copying a mount that a concurrent program's box
  just unmounted) is set up again; one that never sets up is an error, never a pass."""

  def _with_bwrap_failing(self, times: int) -> sandbox.Result:
    if LEVEL != 'full':
      self.skipTest(f'isolation level here is {LEVEL!r}: no bubblewrap jail')
    real = shutil.which('bwrap', path=sandbox.SYSTEM_PATH)
    where = tempfile.mkdtemp()
    os.chmod(where, 0o777)  # the fake runs as the slot's uid
    fake = os.path.join(where, 'bwrap')
    with open(fake, 'w') as f:
      f.write(f'#!/bin/sh\nn=$(cat {where}/count 2>/dev/null || echo 0)\n'
              f'echo $((n + 1)) > {where}/count\n'
              f'if [ "$n" -lt {times} ]; then\n'
              '  echo "bwrap: Can\'t bind mount /oldroot/ on /newroot/: No such file" >&2\n'
              '  exit 1\nfi\n'
              f'exec {real} "$@"\n')
    os.chmod(fake, 0o755)
    which = shutil.which
    with mock.patch.object(sandbox.shutil, 'which',
                           lambda name, **kw: fake if name == 'bwrap' else which(name, **kw)):
      result = _box_run('print("ran")')
    self.assertNothingLeft()
    return result

  def test_a_failed_setup_is_tried_again(self):
    result = self._with_bwrap_failing(2)
    self.assertEqual((result.outcome, result.stdout), ('passed', 'ran\n'), result.stderr)

  def test_a_setup_that_always_fails_is_not_a_pass(self):
    result = self._with_bwrap_failing(sandbox._JAIL_SETUP_TRIES)
    self.assertEqual(result.outcome, 'failed')
    self.assertIn("bwrap: Can't bind mount", result.stderr)


# An early exit from inside the function, in every language: (language, body) pairs completing
# HumanEval/53 (add x and y); each must be `failed`. The correct body must pass.
_CORRECT = {'python': '    return x + y\n', 'php': '    return $x + $y;\n',
            'javascript': '    return x + y;\n', 'go': '\treturn x + y\n',
            'cpp': '    return x + y;\n', 'csharp': '        return x + y;\n',
            'java': '        return x + y;\n'}
_EARLY_EXITS = [
    ('python', '    import sys; sys.exit(0)\n'),
    ('python', '    import os; os._exit(0)\n'),
    ('python', '    raise SystemExit(0)\n'),
    # Printing the placeholder does not help: only the tests' copy becomes the token.
    ('python', f'    print("{CHECKS_DONE}"); exit(0)\n'),
    ('php', '    exit(0);\n'),
    ('javascript', '    process.exit(0);\n'),
    ('go', '\tos.Exit(0)\n\treturn 0\n'),
    ('cpp', '    exit(0);\n'),
    # main itself replaced by one that returns 0 at once.
    ('cpp', '    return x + y; }\nint main() { return 0; }\n#define main babel_unused_main\n'
            'long babel_unused(long x, long y) {\n    return 0;\n'),
    ('csharp', '        Environment.Exit(0);\n        return 0;\n'),
    ('java', '        System.exit(0);\n        return 0;\n'),
    ('java', '        Runtime.getRuntime().halt(0);\n        return 0;\n'),
]


class EarlyExitTest(LeftoversMixin, absltest.TestCase):

  def test_an_early_exit_fails_in_every_language(self):
    skipped = {lang: LANGUAGES[lang].missing_tools() for lang in _CORRECT
               if LANGUAGES[lang].missing_tools()}
    if skipped:
      print(f'early exit: skipping languages whose toolchain is missing: {skipped}')
    cases = [(lang, body, 'passed') for lang, body in _CORRECT.items()]
    cases += [(lang, body, 'failed') for lang, body in _EARLY_EXITS]
    cases = [c for c in cases if c[0] not in skipped]
    self.assertNotEmpty(cases)
    records = {lang: validate.records_by_task(lang)['HumanEval/53'] for lang in _CORRECT}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      results = list(pool.map(
          lambda c: execution.run_program(c[0], program(records[c[0]], c[1]), 10.0), cases))
    for (lang, body, want), (outcome, tail) in zip(cases, results):
      self.assertEqual(outcome, want, f'{lang} {body!r}: {tail[-400:]}')
      if want == 'failed':
        self.assertIn('exit status 0 before the last check', tail)
    self.assertNothingLeft()

  def test_only_the_tests_placeholder_becomes_the_token(self):
    record = validate.records_by_task('python')['HumanEval/53']
    self.assertEqual(record['tests'].count(CHECKS_DONE), 1)
    self.assertTrue(record['tests'].rstrip().endswith(f'print("{CHECKS_DONE}")'))
    with self.assertRaisesRegex(ValueError, CHECKS_DONE):
      execution.run_program('python', 'print("hi")\n')
    # A completion that prints the tests' own line does not pass without the checks either.
    outcome, tail = execution.run_program('python', program(record, f'    print("{CHECKS_DONE}")'
                                                            '\n    return x - y\n'))
    self.assertEqual(outcome, 'failed', tail)


class FallbackTest(absltest.TestCase):

  def test_isolation_is_reported(self):
    note = sandbox.isolation_note()
    self.assertTrue(note.startswith(LEVEL + ' ('), note)
    if LEVEL != 'full':  # the note says why not
      self.assertIn('; not better because ', note)
    if not ROOT:
      self.assertIn('not root', note)

  def test_not_root_degrades_to_rlimits_and_still_fails_early_exits(self):
    setpriv, python = shutil.which('setpriv'), '/usr/bin/python3'
    if not ROOT or not setpriv or not os.path.exists(python):
      self.skipTest('needs root, setpriv and /usr/bin/python3 to run as another user')
    script = (
        'import json\nfrom babel_jax.evaluation import execution, sandbox, validate\n'
        'from babel_jax.evaluation.languages import program\n'
        'r = validate.records_by_task("python")["HumanEval/53"]\n'
        'print(json.dumps([sandbox.isolation(), sandbox.isolation_note(),'
        ' execution.run_program("python", program(r, "    return x + y\\n"))[0],'
        ' execution.run_program("python", program(r, "    exit(0)\\n"))[0]]))\n')
    out = subprocess.run([setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', 'env',
                          '-i', f'PYTHONPATH={testing.REPO}', f'PATH={sandbox.SYSTEM_PATH}',
                          python, '-c', script], capture_output=True, text=True, timeout=60,
                         cwd='/')
    self.assertEqual(out.returncode, 0, out.stderr)
    level, note, good, early = json.loads(out.stdout)
    self.assertEqual(level, 'rlimits')
    self.assertIn('not root', note)
    self.assertEqual((good, early), ('passed', 'failed'))

  def test_root_without_bubblewrap_falls_back_to_namespaces(self):
    if not ROOT:
      self.skipTest('not root: the level is rlimits whether bubblewrap is there or not')
    script = ('import shutil\nwhich = shutil.which\n'
              'shutil.which = lambda name, **kw: None if name == "bwrap" else which(name, **kw)\n'
              'from babel_jax.evaluation import sandbox\nprint(sandbox.isolation_note())\n')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=60, cwd=testing.REPO)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertRegex(out.stdout, r'^namespaces \(.*OTHER WORLD-WRITABLE HOST DIRECTORIES STAY '
                                 r'WRITABLE\); not better because bubblewrap is not installed')

  def test_unknown_level_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'bogus'):
      sandbox.Sandbox(level='bogus')


if __name__ == '__main__':
  absltest.main()
