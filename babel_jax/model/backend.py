"""Which code path suits the platform a program is traced for.

The hand-written backward passes (`transformer.matmul`, `transformer.tied_logits`,
`train/losses.py`) and their optimization barriers exist to keep XLA:CPU off its slow
transposed-matmul path. GPU and TPU compilers take transposed operands natively (cuBLAS, the
MXU), and a barrier there only blocks fusions (the weight-gradient cast into the matmul, the
cross-entropy's softmax into its backward), so off CPU the plain formulas are differentiated by
autodiff. The choice is made when a function is traced, from `jax.default_backend()`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import jax

_OVERRIDE: list[bool | None] = [None]


def platform() -> str:
  """'cpu', 'gpu' or 'tpu': the backend programs are compiled for by default."""
  return jax.default_backend()


def hand_written_backward() -> bool:
  """Whether to trace the CPU-tuned backward passes (True on CPU unless overridden)."""
  if _OVERRIDE[0] is not None:
    return _OVERRIDE[0]
  return platform() == 'cpu'


@contextlib.contextmanager
def use_hand_written_backward(flag: bool) -> Iterator[None]:
  """Forces one path while tracing: tests and benches compare the two on the same machine."""
  previous = _OVERRIDE[0]
  _OVERRIDE[0] = flag
  try:
    yield
  finally:
    _OVERRIDE[0] = previous
