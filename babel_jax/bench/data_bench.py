"""Pipeline throughput: tokens/s the grain pipeline delivers, against what training consumes."""

from __future__ import annotations

import time

from babel_jax.data import loader


def benchmark(cfg, workdir: str, batches: int = 200, warmup: int = 5) -> dict[str, float]:
  """Times `batches` batches of the configured corpus pipeline (after `warmup` batches)."""
  source = loader.make_source(cfg, workdir=workdir)
  for _ in range(warmup):
    next(source)
  t = time.perf_counter()
  real = 0
  for _ in range(batches):
    b = next(source)
    real += int((b['segment_ids'] > 0).sum())
  dt = time.perf_counter() - t
  source.close()
  return {'tokens_per_s': real / dt, 'batches_per_s': batches / dt}


def report(cfg, result: dict[str, float], train_tokens_per_s: float | None) -> str:
  line = (f'data_bench seq={cfg.data.seq_len} batch={cfg.train.batch_size} '
          f'read_threads={cfg.data.read_threads} prefetch={cfg.data.prefetch}: '
          f'{result["tokens_per_s"]:,.0f} tokens/s ({result["batches_per_s"]:.1f} batches/s)')
  if train_tokens_per_s:
    line += (f'; training consumes {train_tokens_per_s:,.0f} tokens/s -> '
             f'{result["tokens_per_s"] / train_tokens_per_s:.0f}x headroom')
  return line
