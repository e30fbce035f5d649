"""Writing files so that readers never see half of one, and a crash keeps the last good copy."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def atomic_write(path: str, text: str) -> None:
  """Writes text to path via a temporary file and rename."""
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_json(path: str, obj: Any, indent: int | None = 2) -> None:
  """JSON atomically (numpy scalars and other numbers as floats); creates the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  atomic_write(path, json.dumps(obj, indent=indent, default=float))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def write_keeping_old(path: str, text: str) -> None:
  """Writes path atomically; a different earlier version is kept as <name>.<time>.json."""
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:
        return
    os.replace(path, path.replace('.json', f'.{int(time.time())}.json'))
  atomic_write(path, text)
