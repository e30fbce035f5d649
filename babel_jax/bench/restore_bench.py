"""Checkpoint streaming: how much restore time the probe walk (runtime/walk.py) hides behind
probing, over saved copies of one model."""

from __future__ import annotations

import tempfile

import jax.numpy as jnp

from babel_jax import config as config_lib
from babel_jax.probes import stream
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import state as state_lib


def restore_overlap(cfg, checkpoints: int = 10) -> dict[str, float]:
  """Streams `checkpoints` saved copies of a model through the probe walk; the share of restore
  time (after the first, which nothing can hide) the walk did not wait for."""
  workdir = tempfile.mkdtemp(prefix='probe_bench_')
  cfg = config_lib.replace(cfg, **{'data.source': 'synthetic', 'probe.deactivate': False,
                                   'checkpoint.async_save': False,
                                   'checkpoint.keep_last': checkpoints})
  state = state_lib.init_state(runtime_lib.build_runtime(cfg), state_lib.optimizer(cfg.train), cfg.seed)
  run = RunDir(workdir)
  manager = ckpt_lib.make_manager(run.checkpoints, cfg.checkpoint, checkpoints)
  for step in range(1, checkpoints + 1):
    ckpt_lib.save(manager, state.replace(step=jnp.asarray(step, jnp.int32)), {}, force=True)
  manager.wait_until_finished()
  manager.close()
  run.write_config(config_lib.to_json(cfg))
  out = stream.walk(cfg, workdir)
  restore, wait = sum(out['restore_s'][1:]), sum(out['wait_s'][1:])
  return {'checkpoints': len(out['probed']), 'restore_s': restore, 'waited_s': wait,
          'probe_s': sum(out['probe_s']), 'hidden': 1 - wait / max(restore, 1e-9)}
