"""Orbax checkpointing: dense-early save schedule, permanent retention, resume and streaming.

A checkpoint holds four items: 'params' and 'opt_state' (sharded arrays, restorable onto any
mesh by passing abstract arrays that carry the new shardings), 'meta' (JSON: step, RNG key) and
'data' (each host's data-iterator state, `process_<i>-of-<n>.json`, written by grain's orbax
handler). Keeping params separate lets probes and evaluation restore only them.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import grain.checkpoint
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from babel_jax.errors import ConfigError


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
    options = ocp.CheckpointManagerOptions(read_only=True, create=False)
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
  out = manager.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(abstract_params)))
  return out['params']


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
