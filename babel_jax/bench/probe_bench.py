"""Probe throughput: the combined probes against a plain forward pass over the same tokens, and
how much checkpoint-restore time the streaming walk hides behind probing."""

from __future__ import annotations

import tempfile
import time

import jax
import jax.numpy as jnp

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import model as model_lib
from babel_jax.probes import lens as lens_lib
from babel_jax.probes import neurons as neurons_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding
from babel_jax.train import state as state_lib


def _time(fn, *args, reps: int = 5) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return sorted(times)[len(times) // 2]


def probe_vs_forward(cfg) -> dict[str, float]:
  """Seconds for neuron statistics + logit lens on one batch each, against two plain forwards."""
  cfg = config_lib.validate(cfg)
  rt = runtime_lib.build(cfg)
  model, params = rt.model, rt.init_params(cfg.seed)
  synthetic = config_lib.replace(cfg, **{'data.source': 'synthetic'})
  batch = rt.put_batch(next(data_lib.make_source(synthetic)))
  return time_probes(model, params, batch, len(cfg.data.languages))


def time_probes(model, params, batch: dict[str, jax.Array], num_langs: int,
                reps: int = 5) -> dict[str, float]:
  """The probe walk's two passes (neuron statistics, logit lens) on `batch` against two plain
  forward passes over the same tokens: medians of `reps` timed calls after a compiling one."""
  b, length = batch['tokens'].shape
  plain = jax.jit(sharding.with_rules(lambda p, x: model_lib.forward(model, p, x).sum()))
  ones = jnp.ones((model.cfg.num_layers, model.cfg.d_ff), jnp.float32)
  stats = jax.jit(sharding.with_rules(
      lambda p, x: neurons_lib.neuron_stats(model, p, x, ones, num_langs)))
  last = jnp.full((b,), length - 1, jnp.int32)
  ids = jnp.arange(b, dtype=jnp.int32)
  lens = jax.jit(sharding.with_rules(
      lambda p, x: lens_lib.lens_stats(model, p, x, last, ids, ids + 1)))
  t_plain = _time(plain, params, batch, reps=reps)
  t_stats = _time(stats, params, batch, reps=reps)
  t_lens = _time(lens, params, batch, reps=reps)
  tokens = 2 * b * length
  return {'plain_s': 2 * t_plain, 'probe_s': t_stats + t_lens,
          'probe_tokens_per_s': tokens / (t_stats + t_lens),
          'plain_tokens_per_s': tokens / (2 * t_plain), 'ratio': (t_stats + t_lens) / (2 * t_plain)}


def restore_overlap(cfg, checkpoints: int = 10) -> dict[str, float]:
  """Streams `checkpoints` saved copies of a model through the probe walk; the share of restore
  time (after the first, which nothing can hide) the walk did not wait for."""
  # Orbax and grain only here: time_probes (gpu_bench's probe figures) runs without them.
  from babel_jax.probes import stream  # pylint: disable=g-import-not-at-top
  from babel_jax.runtime import checkpoints as ckpt_lib  # pylint: disable=g-import-not-at-top
  from babel_jax.runtime.rundir import RunDir  # pylint: disable=g-import-not-at-top
  workdir = tempfile.mkdtemp(prefix='probe_bench_')
  cfg = config_lib.replace(cfg, **{'data.source': 'synthetic', 'probe.deactivate': False,
                                   'checkpoint.async_save': False,
                                   'checkpoint.keep_last': checkpoints})
  state = state_lib.init_state(runtime_lib.build(cfg), state_lib.optimizer(cfg.train), cfg.seed)
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


def report(cfg, fwd: dict[str, float], overlap: dict[str, float]) -> str:
  m = cfg.model
  return (f'probe_bench {m.num_layers}L/{m.d_model}d seq={cfg.data.seq_len} '
          f'batch={cfg.train.batch_size}: probes {fwd["probe_tokens_per_s"]:,.0f} tokens/s vs '
          f'plain forward {fwd["plain_tokens_per_s"]:,.0f} tokens/s -> {fwd["ratio"]:.2f}x the '
          f'forward time; streaming {overlap["checkpoints"]} checkpoints: restore '
          f'{overlap["restore_s"]:.2f}s, waited {overlap["waited_s"]:.2f}s -> '
          f'{100 * overlap["hidden"]:.0f}% of restore time hidden')
