"""Probe throughput: the combined probes against a plain forward pass over the same tokens (JAX
alone: bench/gpu_bench times them on hosts without grain or Orbax); the report of --mode
probe_bench, with restore_bench's streaming figures."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.data import synthetic
from babel_jax.probes import lens as lens_lib
from babel_jax.probes import neurons as neurons_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding


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
  rt = runtime_lib.build_runtime(cfg)
  model, params = rt.model, rt.init_params(cfg.seed)
  batch = rt.put_batch(next(synthetic.from_config(cfg)))  # token values do not change the time
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


def report(cfg, fwd: dict[str, float], overlap: dict[str, float]) -> str:
  m = cfg.model
  return (f'probe_bench {m.num_layers}L/{m.d_model}d seq={cfg.data.seq_len} '
          f'batch={cfg.train.batch_size}: probes {fwd["probe_tokens_per_s"]:,.0f} tokens/s vs '
          f'plain forward {fwd["plain_tokens_per_s"]:,.0f} tokens/s -> {fwd["ratio"]:.2f}x the '
          f'forward time; streaming {overlap["checkpoints"]} checkpoints: restore '
          f'{overlap["restore_s"]:.2f}s, waited {overlap["waited_s"]:.2f}s -> '
          f'{100 * overlap["hidden"]:.0f}% of restore time hidden')
