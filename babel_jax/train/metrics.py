"""Metric sinks (JSONL, TensorBoard, console) and throughput / MFU accounting."""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax.io import atomic_write, read_jsonl
from babel_jax.runtime.rundir import RunDir


def measure_peak_flops(devices: list, n: int = 0, reps: int = 5, dtype='float32') -> float:
  """FLOP/s of all `devices` together, measured by one large matmul per device at once.

  `dtype` is the model's compute dtype: on GPUs and TPUs the bfloat16 peak is several times the
  float32 one, and MFU is reported against the peak of the arithmetic the model runs. n defaults
  to 2048 on CPU and 8192 on accelerators (a 2048 matmul is too short to fill a GPU). Inputs are
  random (zeros or ones can run faster than real data). On fake CPU devices this correctly
  reports the shared host's throughput, since all devices run concurrently on the same cores.
  """
  n = n or (2048 if devices[0].platform == 'cpu' else 8192)
  mesh = jax.sharding.Mesh(np.asarray(devices), ('d',))
  sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('d'))
  make = jax.jit(lambda k: jax.random.normal(k, (len(devices), n, n), jnp.dtype(dtype)),
                 out_shardings=sh)
  a = make(jax.random.PRNGKey(0))
  f = jax.jit(lambda x: jnp.einsum('bij,bjk->bik', x, x), out_shardings=sh)
  f(a).block_until_ready()
  best = float('inf')
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2.0 * n ** 3 * len(devices) / best


class MetricsWriter:
  """Appends one JSON object per logged step to the run's metrics.jsonl, mirrored to its tb/."""

  def __init__(self, run: RunDir, resume_step: int, tensorboard: bool = True):
    self.path = run.metrics_path
    self._file = self._tb = None
    if jax.process_index() != 0:  # One writer per run, whatever the host count.
      return
    self._truncate_after(resume_step)
    self._file = open(self.path, 'a')
    if tensorboard:
      from tensorboardX import SummaryWriter  # absent where gpu_bench runs
      self._tb = SummaryWriter(run.tb_dir, purge_step=resume_step + 1)

  def _truncate_after(self, step: int) -> None:
    """On resume, drops lines for steps after the restored checkpoint (they will be redone)."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip()]
    records = read_jsonl(self.path)  # without a line torn by a full disk or a crash
    kept = [json.dumps(r) + '\n' for r in records if r['step'] <= step]
    if kept != lines:
      atomic_write(self.path, ''.join(kept))

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if self._file is None:
      return
    record = {'step': step, **{k: float(v) for k, v in scalars.items()}}
    try:
      self._file.write(json.dumps(record) + '\n')
      self._file.flush()
    except OSError as e:  # a full disk: name the file (a torn line is dropped on resume)
      raise OSError(e.errno, e.strerror, self.path) from e
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(k, float(v), step)

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
    if self._tb is not None:
      self._tb.close()

  def abandon(self) -> None:
    """Closes after a failure (a full disk), ignoring what closing raises in turn."""
    for sink in (self._file, self._tb):
      try:
        if sink is not None:
          sink.close()
      except Exception:  # pylint: disable=broad-except
        pass
    self._file = self._tb = None


def console_line(step: int, total: int, s: dict[str, float], languages) -> str:
  langs = ' '.join(f'{l}={s[f"loss/{l}"]:.3f}' for l in languages if f'loss/{l}' in s)
  return (f'step {step}/{total} loss={s["loss"]:.4f} [{langs}] lr={s["lr"]:.2e} '
          f'gnorm={s["grad_norm"]:.3f} {s["tokens_per_s"]:.0f} tok/s mfu={100 * s["mfu"]:.1f}%')
