"""Worker processes for the corpus build, and its progress lines (throughput and an ETA).

Workers are spawned, not forked: the caller may hold threads (JAX, grain) that a fork would
copy mid-flight. Tasks are independent and their results are merged by the caller in a fixed
order, so the output does not depend on the number of workers or on which finishes first.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import signal
import time
from typing import Any, Callable, Iterable, Iterator

from babel_jax.errors import WorkerError

INTERVAL_S = 2.0


class Pool:
  """`workers` spawned processes, or the calling process itself when workers is 1."""

  def __init__(self, workers: int):
    self.workers = workers
    self._pool = None

  def __enter__(self) -> 'Pool':
    if self.workers > 1:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          self.workers, mp_context=multiprocessing.get_context('spawn'),
          initializer=_ignore_interrupt)
    return self

  def __exit__(self, *exc) -> None:
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
    """fn over tasks, results in completion order; at most 2 tasks a worker are queued, so the
    tasks' arguments need not all be in memory at once."""
    if self._pool is None:
      yield from map(fn, tasks)
      return
    pending: collections.deque = collections.deque(tasks)
    running: set = set()
    try:
      while pending or running:
        while pending and len(running) < 2 * self.workers:
          running.add(self._pool.submit(fn, pending.popleft()))
        done, running = concurrent.futures.wait(
            running, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
          yield future.result()
    except concurrent.futures.process.BrokenProcessPool as e:
      raise WorkerError(
          'a corpus worker process died (out of memory? or a script that calls corpus.build '
          "with corpus.workers > 1 lacks an `if __name__ == '__main__':` guard)") from e


def _ignore_interrupt() -> None:
  """Ctrl-C reaches every process of the terminal: the main process stops the build and
  reports it in one line; the workers, which it shuts down, print nothing."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


class Progress:
  """Prints '<phase> P% | N files (F/s) | M MB (R MB/s) | ETA T' at most every INTERVAL_S; the
  ETA extrapolates the rate of work done (input bytes for reading) to the work left."""

  def __init__(self, phase: str, total: float, log: Callable[[str], None] = print):
    self.phase, self.total, self.log = phase, max(total, 1e-9), log
    self.t0 = self.last = time.time()
    self.work = self.files = self.nbytes = 0

  def line(self, final: bool = False) -> str:
    dt = max(time.time() - self.t0, 1e-9)
    frac = min(self.work / self.total, 1.0)
    tail = (f'done in {_duration(dt)}' if final else
            f'ETA {_duration(dt * (1 - frac) / frac) if frac > 0 else "?"}')
    return (f'corpus: {self.phase} {100 * frac:3.0f}% | {self.files:,} files '
            f'({self.files / dt:,.0f} files/s) | {self.nbytes / 1e6:,.1f} MB '
            f'({self.nbytes / 1e6 / dt:.1f} MB/s) | {tail}')

  def update(self, work: float, files: int = 0, nbytes: int = 0) -> None:
    self.work += work
    self.files += files
    self.nbytes += nbytes
    now = time.time()
    if now - self.last >= INTERVAL_S:
      self.last = now
      self.log(self.line())

  def finish(self) -> None:
    self.work = self.total
    self.log(self.line(final=True))
