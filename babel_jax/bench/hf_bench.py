"""babel_jax's side of `launch/hf_bench.sh`: import a Hugging Face model, time the probe passes.

  python -m babel_jax.bench.hf_bench --hf DIR --out OUT [--batch 4] [--len 256] [--reps 3]

Times `--mode import` of the directory (read, place, write an Orbax checkpoint), then, on the
imported checkpoint as the probes restore it, the logit lens (last position of each row, every
layer through the model's own final norm and unembedding) and the neuron statistics (MLP
activations after the nonlinearity counted per language, per-language loss) on a random token
batch, which it writes to OUT/batch.npz for TransformerLens' side (bench/tl_reference.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.bench.probe_bench import _time
from babel_jax.probes import lens as lens_lib
from babel_jax.probes import neurons as neurons_lib
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory
from babel_jax.runtime import hf_checkpoints
from babel_jax.runtime import sharding
from babel_jax.runtime.rundir import RunDir


def batch_of(vocab: int, b: int, length: int, langs: int, seed: int = 0) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  tokens = rng.integers(1, min(vocab, 50000), size=(b, length), dtype=np.int32)
  lang_ids = np.broadcast_to((np.arange(b) % langs)[:, None], (b, length)).astype(np.int32)
  targets = np.concatenate([tokens[:, 1:], np.zeros((b, 1), np.int32)], axis=1)
  return {'tokens': tokens, 'targets': targets, 'lang_ids': lang_ids,
          'segment_ids': np.ones((b, length), np.int32),
          'positions': np.broadcast_to(np.arange(length, dtype=np.int32), (b, length)).copy()}


def run(hf_dir: str, out: str, b: int, length: int, reps: int, langs: int = 2) -> dict:
  workdir = tempfile.mkdtemp(prefix='hf_bench_')
  cfg = config_lib.replace(config_lib.default_config(), **{'model.scan_layers': True})
  t = time.perf_counter()
  hf_checkpoints.import_run(cfg, workdir, hf_dir)
  import_s = time.perf_counter() - t
  run_dir = RunDir(workdir)
  cfg = run_dir.typed_config()
  rt = factory.build_runtime(cfg)
  t = time.perf_counter()
  params = ckpt_lib.restore_params(ckpt_lib.make_manager(run_dir.checkpoints, read_only=True), 0,
                                   rt.abstract_params)
  restore_s = time.perf_counter() - t
  host = batch_of(cfg.model.vocab_size, b, length, langs)
  np.savez(os.path.join(out, 'batch.npz'), tokens=host['tokens'], lang_ids=host['lang_ids'])
  batch = rt.put_batch(host)
  model = rt.model
  ones = jnp.ones((cfg.model.num_layers, cfg.model.d_ff), jnp.float32)
  stats = jax.jit(sharding.with_rules(
      lambda p, x: neurons_lib.neuron_stats(model, p, x, ones, langs)))
  last, ids = jnp.full((b,), length - 1, jnp.int32), jnp.arange(b, dtype=jnp.int32)
  lens = jax.jit(sharding.with_rules(
      lambda p, x: lens_lib.lens_stats(model, p, x, last, ids, ids + 1)))
  result = {'side': 'babel_jax', 'import_s': import_s, 'restore_s': restore_s,
            'lens_s': _time(lens, params, batch, reps=reps),
            'neurons_s': _time(stats, params, batch, reps=reps), 'tokens': b * length,
            'params': rt.num_params, 'versions': {'jax': jax.__version__},
            'device': str(jax.devices()[0].device_kind)}
  io.write_json(os.path.join(out, 'jax.json'), result)
  return result


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--hf', required=True)
  p.add_argument('--out', required=True)
  p.add_argument('--batch', type=int, default=4)
  p.add_argument('--len', type=int, default=256)
  p.add_argument('--reps', type=int, default=3)
  a = p.parse_args()
  os.makedirs(a.out, exist_ok=True)
  print(json.dumps(run(a.hf, a.out, a.batch, a.len, a.reps)))


if __name__ == '__main__':
  main()
