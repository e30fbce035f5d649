"""The one walk over a run's checkpoints, for the probes and evaluation: the selected steps without
a result yet, parameters only, restored one step ahead by a background thread; broken and partial
saves skipped with a warning; a run that is still training followed until it ends.

With one process the thread reads a checkpoint into host memory without the launch lock and takes
the lock only to place the arrays on the devices, so the consumer's launches never wait for disk
reads (multi-device programs launched from two threads can deadlock in their collectives; the
lock serialises launches). Several processes keep Orbax's sharded read, which reads only each
host's shards.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import time
from typing import Any, Callable, Iterator

import jax

from babel_jax import io
from babel_jax.errors import RunError
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime.rundir import RunDir


@dataclasses.dataclass(frozen=True)
class Restored:
  """One checkpoint's parameters, placed on the devices."""
  step: int
  params: Any
  restore_s: float  # reading and placing them
  wait_s: float  # what the walk waited for them (the rest overlapped the previous step's work)


def partial_saves(ckpt_dir: str, min_age_s: float = 0.0) -> list[str]:
  """Unfinished saves; with min_age_s, only those untouched that long (not still being written)."""
  if not os.path.isdir(ckpt_dir):
    return []
  now = time.time()
  out = []
  for name in sorted(os.listdir(ckpt_dir)):
    if 'orbax-checkpoint-tmp' in name:
      try:
        age = now - os.path.getmtime(os.path.join(ckpt_dir, name))
      except OSError:  # finished and renamed meanwhile
        continue
      if age >= min_age_s:
        out.append(name)
  return out


class Walk:
  """The checkpoints of one run to measure. `restored` yields them; `skipped` lists the steps
  that could not be restored, `available` the complete steps last seen."""

  def __init__(self, run: RunDir, model_config: dict[str, Any], what: str,
               follow: bool = False):
    """Checks, before anything is built, that the run has checkpoints (or, when following, will)
    of the same model as `model_config`; `what` names the measurement in messages."""
    if not (os.path.isdir(run.checkpoints) and
            (follow or ckpt_lib.complete_steps(run.checkpoints))):
      raise RunError(f'no checkpoints to {what} in {run.checkpoints}; train a run there first')
    ckpt_lib.check_same_model(run.model_config(), model_config, run.path)
    self.run, self.what, self.follow = run, what, follow
    self.skipped: list[int] = []
    self.available: list[int] = []
    self._warned: set[str] = set()

  def restored(self, abstract_params, selection: str, done: Callable[[int], bool],
               field: str, lock=None, prefetch: bool = True, poll_s: float = 5.0,
               timeout_s: float = 600.0) -> Iterator[Restored]:
    """Every step of `selection` (checkpoints.select_steps, named `field` in errors) that is not
    `done`, in order, restored onto the shardings of `abstract_params`; `lock` serialises device
    placement with the consumer's launches; `prefetch` restores the next step while the
    consumer works on this one. Following, polls every poll_s until the run's final step is
    measured or no checkpoint came for timeout_s."""
    lock = lock or contextlib.nullcontext()
    manager = ckpt_lib.make_manager(self.run.checkpoints, read_only=True)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    final = self.run.final_step()
    last_new = time.time()

    def restore(step: int) -> tuple[Any, float]:
      t = time.perf_counter()
      if jax.process_count() == 1:
        host = ckpt_lib.read_params(manager, step, abstract_params)
        with lock:
          params = ckpt_lib.place_params(host, abstract_params)
      else:
        with lock:
          params = ckpt_lib.restore_params(manager, step, abstract_params)
      jax.block_until_ready(params)
      return params, time.perf_counter() - t

    try:
      while True:
        self._warn_partial()
        manager.reload()
        self.available = list(manager.all_steps())
        todo = [s for s in ckpt_lib.select_steps(selection, self.available, field)
                if not done(s) and s not in self.skipped]
        if todo:
          last_new = time.time()
          io.log(f'{self.what}: {len(todo)} checkpoints of {self.run.path}: {todo[:8]}'
                 f'{" ..." if len(todo) > 8 else ""}')
          yield from self._in_order(todo, restore, pool, prefetch)
        if not self.follow:
          break
        if final is not None and final in self.available and not todo:
          io.log(f'the run reached its final step {final}; stop following')
          break
        if time.time() - last_new > timeout_s:
          io.log(f'no new checkpoint for {timeout_s:.0f}s; stop following')
          break
        time.sleep(poll_s)
    finally:
      pool.shutdown()
      manager.close()

  def _in_order(self, todo: list[int], restore, pool, prefetch: bool) -> Iterator[Restored]:
    pending = pool.submit(restore, todo[0])
    for i, step in enumerate(todo):
      t = time.perf_counter()
      try:
        params, restore_s = pending.result()
      except Exception as e:  # a corrupt, partial or incompatible checkpoint: skip it
        params = None
        self.skipped.append(step)
        io.log(f'warning: skipping checkpoint {self.run.checkpoints}/{step}: '
               f'{type(e).__name__}: {(str(e).splitlines() or [""])[0][:300]}')
      wait_s = time.perf_counter() - t
      ahead = i + 1 < len(todo)
      if ahead and prefetch:
        pending = pool.submit(restore, todo[i + 1])
      if params is not None:
        yield Restored(step, params, restore_s, wait_s)
      if ahead and not prefetch:
        pending = pool.submit(restore, todo[i + 1])

  def _warn_partial(self) -> None:
    # While following a live run, a fresh tmp folder is a save in flight, not a partial one.
    ckpt_dir = self.run.checkpoints
    for name in partial_saves(ckpt_dir, min_age_s=300.0 if self.follow else 0.0):
      if name not in self._warned:
        self._warned.add(name)
        io.log(f'warning: skipping partial checkpoint {ckpt_dir}/{name} (a save that did not '
               'finish)')
