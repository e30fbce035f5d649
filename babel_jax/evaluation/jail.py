"""Executable that confines itself, then execs a program:
`python -m babel_jax.evaluation.jail SPEC_JSON -- ARGV...`.

SPEC (written by sandbox.Sandbox): level ('full', 'namespaces' or 'rlimits'), limits, uid (-1:
keep this one), workdir, temp ({'/tmp': box directory, ...}) and bwrap (its path).

The sandbox starts this as a fresh process (no threads, no JAX) instead of configuring the child
between fork and exec, which is unsafe in a multithreaded parent. As root it drops to UID and
applies the rlimits; then
* full: execs bubblewrap, which (through an unprivileged user namespace of UID) binds the host
  read-only, the workdir and the private temporary directories writable, and runs ARGV in new
  pid, network, ipc and uts namespaces with a minimal /dev and no capabilities;
* namespaces: first enters new network and mount namespaces and binds the private temporary
  directories over /tmp, /var/tmp and /dev/shm, then execs ARGV;
* rlimits: execs ARGV.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18


def bwrap_argv(bwrap: str, workdir: str, temp: dict[str, str]) -> list[str]:
  """The bubblewrap command line that runs a program (appended) in the full level's jail."""
  argv = [bwrap, '--unshare-all', '--die-with-parent', '--new-session',
          '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc']
  for target, source in temp.items():
    argv += ['--bind', source, target]
  # bubblewrap's /dev is a tmpfs of its own: read-only, so that nothing is written outside the
  # box (its device nodes still work).
  return argv + ['--remount-ro', '/dev', '--bind', workdir, workdir, '--chdir', workdir, '--']


def _enter_namespaces(temp: dict[str, str]) -> None:
  libc = ctypes.CDLL(None, use_errno=True)

  def check(ok: bool, what: str):
    if not ok:
      errno = ctypes.get_errno()
      raise OSError(errno, f'{what}: {os.strerror(errno)}')

  check(libc.unshare(CLONE_NEWNET | CLONE_NEWNS) == 0, 'unshare network and mount namespaces')
  check(libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None) == 0, 'make / private')
  for target, source in temp.items():
    check(libc.mount(source.encode(), target.encode(), None, MS_BIND, None) == 0,
          f'bind {source} on {target}')


def confine(spec: dict) -> list[str]:
  """Applies SPEC to this process; returns the argv prefix to exec the program with."""
  limits, uid = spec['limits'], spec['uid']
  if spec['level'] == 'namespaces':
    _enter_namespaces(spec['temp'])
  if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
  mb = 1 << 20
  resource.setrlimit(resource.RLIMIT_CPU, (limits['cpu_s'], limits['cpu_s'] + 1))
  resource.setrlimit(resource.RLIMIT_AS, (limits['memory_mb'] * mb,) * 2)
  resource.setrlimit(resource.RLIMIT_NPROC, (limits['processes'],) * 2)
  resource.setrlimit(resource.RLIMIT_FSIZE, (limits['file_mb'] * mb,) * 2)
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
  os.chdir(spec['workdir'])
  if spec['level'] == 'full':
    return bwrap_argv(spec['bwrap'], spec['workdir'], spec['temp'])
  return []


def main(argv: list[str]) -> None:
  if len(argv) < 3 or argv[1] != '--':
    sys.exit('usage: python -m babel_jax.evaluation.jail SPEC_JSON -- ARGV...')
  spec, command = json.loads(argv[0]), argv[2:]
  os.environ.pop('PYTHONPATH', None)  # only there to find this module
  try:
    command = confine(spec) + command
  except OSError as e:
    sys.stderr.write(f'jail: cannot confine the program: {e}\n')
    os._exit(126)
  try:
    os.execvp(command[0], command)
  except OSError as e:
    sys.stderr.write(f'jail: cannot run {command[0]}: {e}\n')
    os._exit(127)


if __name__ == '__main__':
  main(sys.argv[1:])
