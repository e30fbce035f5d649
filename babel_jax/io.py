"""Writing files so that readers never see half of one, and a crash keeps the last good copy;
the progress log every package writes to."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from typing import Any

from absl import logging

from babel_jax.errors import RunError

# Why a write failed, when the cause is the storage (not the program): errno and the words
# libraries that wrap the OSError put in their messages (TensorStore: "os_error_code='28'").
_STORAGE = ((errno.ENOSPC, ('No space left on device', "os_error_code='28'"), 'no space left'),
            (errno.EDQUOT, ('Disk quota exceeded', "os_error_code='122'"), 'disk quota exceeded'),
            (errno.EROFS, ('Read-only file system', "os_error_code='30'"), 'read-only file system'))


def storage_failure(e: BaseException | str) -> str | None:
  """'no space left' (or 'disk quota exceeded', 'read-only file system') when `e`, or an
  exception it was raised from, failed because of the storage; None otherwise. Orbax and
  TensorStore raise ValueErrors that carry the OSError only in their text, so text counts too."""
  if isinstance(e, str):
    return next((reason for _, words, reason in _STORAGE if any(w in e for w in words)), None)
  seen: set[int] = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    for code, _, reason in _STORAGE:
      if isinstance(e, OSError) and e.errno == code:
        return reason
    reason = storage_failure(str(e))
    if reason:
      return reason
    e = e.__cause__ or e.__context__
  return None


def atomic_write(path: str, text: str) -> None:
  """Writes text to path via a temporary file and rename; on failure (a full disk) the old file
  is intact, no temporary file is left, and the OSError names `path`."""
  tmp = f'{path}.tmp.{os.getpid()}'
  try:
    with open(tmp, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    try:
      os.remove(tmp)
    except OSError:
      pass
    raise OSError(e.errno, e.strerror, path) from e


def write_json(path: str, obj: Any, indent: int | None = 2) -> None:
  """JSON atomically (numpy scalars and other numbers as floats); creates the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  atomic_write(path, json.dumps(obj, indent=indent, default=float))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_jsonl(path: str) -> list[Any]:
  """The records of a JSON Lines file; a torn last line (a write cut short by a full disk or a
  crash) is dropped, a bad line elsewhere is an error naming the file and line."""
  with open(path) as f:
    lines = [l for l in f if l.strip()]
  out = []
  for n, line in enumerate(lines, 1):
    try:
      out.append(json.loads(line))
    except ValueError as e:
      if n == len(lines) and not line.endswith('\n'):
        break
      raise RunError(f'{path}:{n} is damaged (not a JSON record: {e}); restore the file or '
                     'delete that line') from e
  return out


def write_keeping_old(path: str, text: str) -> None:
  """Writes path atomically; a different earlier version is kept as <name>.<time>.json."""
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:
        return
    os.replace(path, path.replace('.json', f'.{int(time.time())}.json'))
  atomic_write(path, text)


def log(msg: str) -> None:
  """A progress line on stdout and in absl's log, from the first process only."""
  jax = sys.modules.get('jax')  # a job that never imported JAX (a report, a corpus) is one process
  if jax is None or jax.process_index() == 0:
    logging.info(msg)
    print(msg, flush=True)
