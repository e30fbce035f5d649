"""Orbax checkpointing: dense-early save schedule, permanent retention, resume and streaming.

A checkpoint holds four items: 'params' and 'opt_state' (sharded arrays, restorable onto any
mesh by passing abstract arrays that carry the new shardings), 'meta' (JSON: step, RNG key) and
'data' (each host's data-iterator state, `process_<i>-of-<n>.json`, written by grain's orbax
handler). Keeping params separate lets probes and evaluation restore only them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import shutil
from typing import Any, Iterator

import grain.checkpoint
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from babel_jax.errors import CheckpointError, ConfigError

_TMP = '.orbax-checkpoint-tmp'  # Orbax's suffix for a save in progress


class _ReadOnlyNotice(logging.Filter):
  """Drops Orbax's warning that a read-only manager is read-only, which it prints each time one
  is made (every probe walk, every continual start); every other record passes."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith('Given directory is read only=')


logging.getLogger('absl').addFilter(_ReadOnlyNotice())


def permanent_steps(ckpt_cfg, total_steps: int) -> list[int]:
  """Log-spaced steps (many early, where the dynamics move fastest) plus `keep_every` multiples."""
  steps = set()
  if ckpt_cfg.log_spaced:
    grid = np.logspace(0, np.log10(max(total_steps, 1)), ckpt_cfg.log_spaced)
    steps |= {int(s) for s in np.unique(np.round(grid))}
  if ckpt_cfg.keep_every:
    steps |= set(range(ckpt_cfg.keep_every, total_steps + 1, ckpt_cfg.keep_every))
  steps.add(total_steps)
  return sorted(s for s in steps if 1 <= s <= total_steps)


def make_manager(directory: str, ckpt_cfg=None, total_steps: int = 0,
                 read_only: bool = False) -> ocp.CheckpointManager:
  """A manager that saves permanent and every-N steps and keeps permanent + latest ones."""
  directory = os.path.abspath(directory)
  if read_only:
    # save_interval_steps=0: Orbax warns that it sets it so when left at its default.
    options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0)
  else:
    keep = permanent_steps(ckpt_cfg, total_steps)
    options = ocp.CheckpointManagerOptions(
        save_decision_policy=policies.AnySavePolicy([
            policies.SpecificStepsPolicy(steps=set(keep)),
            policies.FixedIntervalPolicy(interval=ckpt_cfg.every_steps)]),
        preservation_policy=policies.AnyPreservationPolicy([
            policies.CustomSteps(steps=[0, *keep]),  # 0: a continual run's starting point
            policies.LatestN(n=max(ckpt_cfg.keep_last, 1))]),
        enable_async_checkpointing=ckpt_cfg.async_save,
        cleanup_tmp_directories=True)
  return ocp.CheckpointManager(directory, item_names=('params', 'opt_state', 'meta', 'data'),
                               options=options)


class _DataState:
  """Adapts a data source (JSON-able get_state/set_state) to grain's orbax handler."""

  def __init__(self, source):
    self.source = source

  def get_state(self) -> bytes:
    return json.dumps(self.source.get_state()).encode()

  def set_state(self, state: bytes) -> None:
    self.source.set_state(json.loads(state))

  def start_prefetch(self) -> None:
    pass


def save(manager: ocp.CheckpointManager, state, meta: dict[str, Any], source=None,
         force: bool = False) -> bool:
  """Saves if the schedule asks for this step (or `force`); returns whether a save started."""
  step = int(state.step)
  meta = {**meta, 'step': step, 'rng': np.asarray(state.rng).tolist()}
  items = dict(params=ocp.args.StandardSave(state.params),
               opt_state=ocp.args.StandardSave(state.opt_state), meta=ocp.args.JsonSave(meta))
  if source is not None:
    items['data'] = grain.checkpoint.CheckpointSave(_DataState(source))
  return manager.save(step, force=force, args=ocp.args.Composite(**items))


def restore_data_state(manager: ocp.CheckpointManager, step: int, source) -> bool:
  """This host's data-iterator state into `source`; False when the checkpoint has none for this
  host count (it was written by a different number of hosts)."""
  try:
    manager.restore(step, args=ocp.args.Composite(
        data=grain.checkpoint.CheckpointRestore(_DataState(source))))
  except (ValueError, KeyError, FileNotFoundError):
    return False
  return True


def restore(manager: ocp.CheckpointManager, step: int, abstract_state):
  """Full restore onto the shardings carried by `abstract_state`: (state, meta)."""
  with _restoring(manager, step):
    out = manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_state.params),
        opt_state=ocp.args.StandardRestore(abstract_state.opt_state),
        meta=ocp.args.JsonRestore()))
  meta = dict(out['meta'])
  rng = jax.numpy.asarray(np.asarray(meta['rng'], np.uint32))
  state = abstract_state.replace(step=jax.numpy.asarray(meta['step'], jax.numpy.int32),
                                 params=out['params'], opt_state=out['opt_state'], rng=rng)
  return state, meta


def restore_params(manager: ocp.CheckpointManager, step: int, abstract_params):
  """Parameters only (no optimizer state is read), onto the shardings in `abstract_params`."""
  with _restoring(manager, step):
    out = manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_params)))
  return out['params']


def _one_line(e: BaseException, limit: int = 240) -> str:
  """'Type: first line of the message', cut to `limit` characters."""
  text = (str(e).strip().splitlines() or [''])[0]
  text = f'{type(e).__name__}: {text.split(" See full TensorStore details")[0]}'
  return text if len(text) <= limit else text[:limit - 3] + '...'


@contextlib.contextmanager
def _restoring(manager: ocp.CheckpointManager, step: int) -> Iterator[None]:
  """Turns a failed restore into a CheckpointError naming the checkpoint and the way out."""
  try:
    yield
  except CheckpointError:
    raise
  except Exception as e:  # Orbax and TensorStore raise many kinds; all mean the same here
    directory = str(manager.directory)
    earlier = [s for s in complete_steps(directory) if s < step]
    way_out = (f'move it aside to go on from step {earlier[-1]}' if earlier else
               'move it aside to start afresh')
    raise CheckpointError(f'checkpoint {directory}/{step} cannot be restored ({_one_line(e)}); '
                          f'it is incomplete, corrupt or from another model: {way_out}') from e


def complete_steps(directory: str) -> list[int]:
  """Steps whose checkpoint was written completely (Orbax renames a save's folder when done)."""
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(directory, n)))


class Saver:
  """Saves on the schedule and knows which checkpoint a failure belongs to.

  Orbax writes in background threads: a save that fails (a full disk) raises only at the next
  save or wait. `writing` is the step of the checkpoint being written when an exception leaves
  `save` or `wait` (None otherwise); `abandon` cleans up after such a failure so that the last
  complete checkpoint is again the latest one.
  """

  def __init__(self, manager: ocp.CheckpointManager, optimizer_state: str = 'all'):
    self.manager = manager
    self.optimizer_state = optimizer_state  # checkpoint.optimizer_state: 'all' or 'latest'
    self.writing: int | None = None
    self._in_flight: int | None = None

  def save(self, state, source=None, force: bool = False) -> bool:
    self.wait()
    self.writing = int(state.step)
    started = save(self.manager, state, {}, source, force=force)
    self._in_flight, self.writing = (self.writing if started else None), None
    return started

  def wait(self) -> None:
    self.writing = self._in_flight
    self.manager.wait_until_finished()
    self._in_flight = self.writing = None
    if self.optimizer_state == 'latest' and jax.process_index() == 0:
      prune_optimizer_state(str(self.manager.directory))

  def abandon(self) -> None:
    """After a failed save: stops the manager (ignoring what that raises in turn), drops the
    partial save and Orbax's orphaned writes, so the disk holds complete checkpoints only."""
    try:
      self.manager.close()
    except Exception:  # pylint: disable=broad-except
      pass
    gc.collect()  # closes the write coroutines a failed save leaves pending, while Python runs
    if jax.process_index() == 0:
      directory = str(self.manager.directory)
      for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if _TMP in name:
          shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def prune_optimizer_state(directory: str) -> list[int]:
  """Drops the optimizer state of every complete checkpoint but the newest; returns their steps.

  Runs only after the newest save has committed, so a resume (always from the newest) still has
  its optimizer; probes and continual runs restore params alone. The item is renamed before it
  is removed, so an interrupted prune never leaves a half-deleted 'opt_state' behind.
  """
  pruned = []
  for step in complete_steps(directory)[:-1]:
    item = os.path.join(directory, str(step), 'opt_state')
    if os.path.isdir(item):
      doomed = item + '.pruned'
      os.replace(item, doomed)
      shutil.rmtree(doomed, ignore_errors=True)
      pruned.append(step)
  return pruned


def select_steps(spec: str, available: list[int], field: str = 'probe.steps') -> list[int]:
  """Checkpoint steps to visit: '' all; 'A:B' A <= step <= B; 'A:B:S' every S-th of those."""
  if not spec:
    return sorted(available)
  parts = spec.split(':')
  try:
    lo = int(parts[0]) if parts[0] else 0
    hi = int(parts[1]) if len(parts) > 1 and parts[1] else math.inf
    stride = int(parts[2]) if len(parts) > 2 else 1
  except ValueError as e:
    raise ConfigError(f'{field}={spec!r} must look like "A:B" or "A:B:S"') from e
  if len(parts) > 3 or stride < 1:
    raise ConfigError(f'{field}={spec!r} must look like "A:B" or "A:B:S", S >= 1')
  return sorted(s for s in available if lo <= s <= hi)[::stride]


def read_params(manager: ocp.CheckpointManager, step: int, abstract_params):
  """Parameters only, read into host memory as numpy arrays (no device work at all)."""
  as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), abstract_params)
  out = manager.restore(step, args=ocp.args.Composite(
      params=ocp.args.PyTreeRestore(restore_args=as_numpy)))
  return out['params']


def place_params(host_params, abstract_params):
  """Host arrays onto the shardings in `abstract_params` (each process places its own shards)."""
  def place(x, a):
    x = np.asarray(x, a.dtype)
    return jax.make_array_from_callback(a.shape, a.sharding, lambda index: x[index])
  return jax.tree.map(place, host_params, abstract_params)


def check_same_model(src: dict[str, Any] | None, dst: dict[str, Any], where: str) -> None:
  """Raises naming every architecture field that differs (layout-only fields may differ)."""
  if src is None:
    return
  layout_only = {'remat', 'dtype', 'param_dtype'}
  diff = [f'{k}: {src.get(k)!r} there vs {dst.get(k)!r} here' for k in sorted(dst)
          if k not in layout_only and src.get(k) != dst.get(k)]
  if diff:
    raise ConfigError(f'model config differs from the run at {where}: ' + '; '.join(diff))
