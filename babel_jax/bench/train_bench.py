"""Train-step throughput and model FLOP utilisation against a peak measured on the spot."""

from __future__ import annotations

import time

import jax

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.data import synthetic
from babel_jax.runtime import factory as runtime_lib
from babel_jax.train import metrics as metrics_lib
from babel_jax.train import state as state_lib
from babel_jax.train import step as step_lib


def benchmark(cfg, steps: int = 5, warmup: int = 2) -> dict[str, float]:
  """Times `steps` jitted train steps on pre-placed batches (data loading excluded)."""
  cfg = config_lib.validate(cfg)
  rt = runtime_lib.build_runtime(cfg)
  tx = state_lib.optimizer(cfg.train)
  num_langs = len(cfg.data.languages)
  state = state_lib.init_state(rt, tx, cfg.seed)
  _, shardings = state_lib.state_shardings(rt, tx)
  step_fn = step_lib.jit_train_step(rt, tx, shardings, num_langs, cfg.train.grad_accum)
  # Step time does not depend on token values: synthetic batches keep the corpus out of it.
  source = synthetic.from_config(cfg)
  batches = [rt.put_batch(next(source)) for _ in range(2)]
  t0 = time.perf_counter()
  for i in range(warmup):
    state, m = step_fn(state, batches[i % 2])
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  peak = cfg.train.peak_flops or metrics_lib.measure_peak_flops(list(rt.mesh.devices.flat),
                                                                dtype=cfg.model.dtype)
  times = []
  for i in range(steps):
    t = time.perf_counter()
    state, m = step_fn(state, batches[i % 2])
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  step_s = sorted(times)[len(times) // 2]
  tokens = cfg.train.batch_size * cfg.data.seq_len
  flops = model_lib.flops_per_token(rt.model.cfg, cfg.data.seq_len) * tokens
  return {'params': model_lib.param_count(state.params), 'step_s': step_s,
          'tokens_per_s': tokens / step_s, 'model_flops_per_s': flops / step_s,
          'peak_flops': peak, 'mfu': flops / step_s / peak, 'warmup_s': compile_s}


def report(cfg, result: dict[str, float]) -> str:
  m = cfg.model
  return (f'bench {m.num_layers}L/{m.d_model}d/{m.num_heads}h seq={cfg.data.seq_len} '
          f'batch={cfg.train.batch_size} vocab={m.vocab_size} '
          f'({result["params"] / 1e6:.1f}M params, remat={m.remat}, dtype={m.dtype}): '
          f'{result["tokens_per_s"]:.0f} tokens/s, step {result["step_s"] * 1e3:.0f} ms, '
          f'{result["model_flops_per_s"] / 1e9:.1f} GFLOP/s of measured peak '
          f'{result["peak_flops"] / 1e9:.1f} GFLOP/s -> MFU {100 * result["mfu"]:.1f}%')
