"""Executable that confines itself, then execs a program: `python -m babel_jax.evaluation.jail
LIMITS_JSON UID WORKDIR -- ARGV...` (UID -1: rlimits only).

The sandbox starts this as a fresh process (no threads, no JAX) instead of configuring the child
between fork and exec, which is unsafe in a multithreaded parent. As root it enters new network
and mount namespaces, mounts fresh /tmp, /var/tmp and /dev/shm, drops to UID; then applies the
rlimits, changes to WORKDIR and execs ARGV.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18


def confine(limits: dict, uid: int, workdir: str) -> None:
  if uid >= 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) == 0:
      libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None)
      for d in (b'/tmp', b'/var/tmp', b'/dev/shm'):
        libc.mount(b'tmpfs', d, b'tmpfs', 0, b'size=64m,mode=1777')
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
  mb = 1 << 20
  resource.setrlimit(resource.RLIMIT_CPU, (limits['cpu_s'], limits['cpu_s'] + 1))
  resource.setrlimit(resource.RLIMIT_AS, (limits['memory_mb'] * mb,) * 2)
  resource.setrlimit(resource.RLIMIT_NPROC, (limits['processes'],) * 2)
  resource.setrlimit(resource.RLIMIT_FSIZE, (limits['file_mb'] * mb,) * 2)
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
  os.chdir(workdir)


def main(argv: list[str]) -> None:
  limits, uid, workdir, sep, *command = argv
  if sep != '--' or not command:
    sys.exit('usage: python -m babel_jax.evaluation.jail LIMITS_JSON UID WORKDIR -- ARGV...')
  os.environ.pop('PYTHONPATH', None)  # only there to find this module
  confine(json.loads(limits), int(uid), workdir)
  try:
    os.execvp(command[0], command)
  except OSError as e:
    sys.stderr.write(f'jail: cannot run {command[0]}: {e}\n')
    os._exit(127)


if __name__ == '__main__':
  main(sys.argv[1:])
