"""One GPU host, measured in one command: train, attention, probe and sampling throughput.

  python -m babel_jax.bench.gpu_bench [--out DIR] [--budget-s S] [--cpu-smoke]
  (launch/gpu_bench.sh checks the host, installs what is missing and runs this)

On one GPU, against the bfloat16 matmul peak measured on the spot (8192^3, random inputs):
train tokens/s and MFU of GPT-2 shapes of ~125M, ~350M and 1.3B parameters (bfloat16 compute,
float32 master weights and optimizer, 'auto' attention: cuDNN flash attention when it compiles,
the least rematerialisation that fits the GPU's memory); the attention implementations side by
side on the 125M shape; the probe walk's passes (neuron statistics + logit lens) on 1.3B against
its plain forward pass; and key-value-cache sampling on 1.3B. Sections run in order of
importance and are skipped, with a note, once `--budget-s` is spent; compilation is included.
The table is printed and written with every figure as JSON to DIR (results.md, results.json).

`--cpu-smoke` runs the same code path with tiny shapes on the CPU (no GPU needed, well under two
minutes): what the test suite checks. Imports: jax, flax, optax, numpy, ml_collections (the
config schema) and absl (logging), nothing else (no grain, orbax, tensorboardX or corpus tools).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax import model as model_lib
from babel_jax.bench import probe_bench
from babel_jax.data.synthetic import SyntheticSource
from babel_jax.evaluation import sampling
from babel_jax.errors import BabelError
from babel_jax.model import attention as attention_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding
from babel_jax.train import metrics as metrics_lib
from babel_jax.train import plan as plan_lib
from babel_jax.train import state as state_lib
from babel_jax.train import step as step_lib

GIB = 2**30
LANGS = ('python', 'php', 'go')


@dataclasses.dataclass(frozen=True)
class Shape:
  """A GPT-2-style model and the batch it is timed on."""
  name: str
  layers: int
  d_model: int
  heads: int
  seq: int
  batch: int
  vocab: int = 50304

  def label(self) -> str:
    return (f'{self.name} ({self.layers}L/{self.d_model}d/{self.heads}h, seq {self.seq}, '
            f'batch {self.batch})')


@dataclasses.dataclass(frozen=True)
class Plan:
  """What one run of the bench measures."""
  train: tuple[Shape, ...]  # ~125M, ~350M, 1.3B
  attention_shape: Shape  # the implementations side by side on this one
  attention_impls: tuple[str, ...]
  big: Shape  # probes and sampling
  sample_batch: int
  sample_prompt: int
  sample_new: int
  steps: int  # timed train steps per shape
  peak_n: int  # matmul size of the peak measurement


GPU = Plan(
    train=(Shape('125M', 12, 768, 12, 2048, 16), Shape('350M', 24, 1024, 16, 2048, 16),
           Shape('1.3B', 24, 2048, 16, 2048, 16)),
    attention_shape=Shape('125M', 12, 768, 12, 2048, 16),
    attention_impls=('cudnn', 'xla', 'chunked'),
    big=Shape('1.3B', 24, 2048, 16, 2048, 8),
    sample_batch=32, sample_prompt=128, sample_new=256, steps=6, peak_n=8192)

# One tiny model stands in for all three sizes: identical programs compile once (the persistent
# compilation cache serves the others), which keeps the smoke test short on a 2-core machine.
_TINY = dict(layers=2, d_model=64, heads=4, seq=128, batch=4, vocab=512)
SMOKE = Plan(
    train=tuple(Shape(f'smoke-{n}', **_TINY) for n in ('125M', '350M', '1.3B')),
    attention_shape=Shape('smoke-125M', **_TINY),
    attention_impls=('cudnn', 'xla', 'chunked'),
    big=Shape('smoke-1.3B', **_TINY),
    sample_batch=4, sample_prompt=16, sample_new=16, steps=3, peak_n=512)


def config_for(shape: Shape, attention: str = 'auto', remat: str = 'none'):
  """The run config of one bench shape: bfloat16 compute over float32 parameters, scanned layers
  (one compiled layer body: short compiles), one device."""
  return config_lib.replace(config_lib.Config(), model={
      'vocab_size': shape.vocab, 'd_model': shape.d_model, 'num_layers': shape.layers,
      'num_heads': shape.heads, 'max_len': shape.seq, 'dtype': 'bfloat16',
      'param_dtype': 'float32', 'attention_impl': attention, 'remat': remat,
      'scan_layers': True}, data={'languages': LANGS, 'seq_len': shape.seq,
                                  'mean_doc_len': max(shape.seq // 2, 8)},
      **{'train.batch_size': shape.batch, 'mesh.num_devices': 1})


def synthetic_batches(cfg, n: int = 2) -> list[dict[str, np.ndarray]]:
  """Step time does not depend on token values: packed synthetic documents."""
  source = SyntheticSource(LANGS, (1 / 3,) * 3, cfg.model.vocab_size, cfg.train.batch_size,
                           cfg.data.seq_len, cfg.data.mean_doc_len, cfg.seed)
  return [next(source) for _ in range(n)]


# Devices and peak ---------------------------------------------------------------------------

def _version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def device_info() -> dict[str, Any]:
  """The device the bench runs on, its memory, the driver and the JAX stack's versions."""
  dev = jax.devices()[0]
  stats = dev.memory_stats() or {}
  info = {'platform': dev.platform, 'device': dev.device_kind, 'count': jax.device_count(),
          'memory_gib': stats.get('bytes_limit', 0) / GIB or None,
          'versions': {n: _version(n) for n in (
              'jax', 'jaxlib', 'flax', 'optax', 'jax-cuda13-plugin', 'jax-cuda12-plugin',
              'nvidia-cudnn-cu13', 'nvidia-cudnn-cu12')},
          'python': sys.version.split()[0]}
  info['versions'] = {k: v for k, v in info['versions'].items() if v}
  if dev.platform == 'gpu' and shutil.which('nvidia-smi'):
    out = subprocess.run(['nvidia-smi', '--query-gpu=name,memory.total,driver_version',
                          '--format=csv,noheader'], capture_output=True, text=True, timeout=30)
    if out.returncode == 0 and out.stdout.strip():
      info['nvidia_smi'] = out.stdout.strip().splitlines()[0]
  return info


def measure_peak(n: int) -> float:
  """bfloat16 FLOP/s of one device, from the median-free best of a few n^3 matmuls."""
  return metrics_lib.measure_peak_flops(jax.devices()[:1], n=n, dtype='bfloat16')


# Training -----------------------------------------------------------------------------------

def _state_bytes(params: int) -> float:
  return 16.0 * params  # float32 parameters, gradients and AdamW's two moments


def remat_candidates(cfg, params: int, limit_bytes: float | None, flash: bool) -> list[str]:
  """Remat choices from least to most recomputation, starting at the least whose estimated
  memory (plan.activation_bytes) fits 90% of the device; all of them when the limit is unknown."""
  order = ['none', 'dots', 'full']
  if not limit_bytes:
    return order
  shape = {'data': 1, 'fsdp': 1, 'tensor': 1}
  for i, remat in enumerate(order):
    need = _state_bytes(params) + plan_lib.activation_bytes(
        config_lib.replace(cfg, **{'model.remat': remat}), shape, flash=flash)['total']
    if need < 0.9 * limit_bytes:
      return order[i:]
  return order[-1:]


def _compiled_bytes(compiled) -> float | None:
  try:
    m = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except  (not every backend reports it)
    return None
  if m is None:
    return None
  return float(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
               + m.temp_size_in_bytes)


def _abstract_batch(cfg, mesh) -> dict[str, jax.ShapeDtypeStruct]:
  sh = sharding.batch_sharding(mesh)
  shape = (cfg.train.batch_size, cfg.data.seq_len)
  return {k: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=sh)
          for k in ('tokens', 'targets', 'segment_ids', 'positions', 'lang_ids')}


def train_case(shape: Shape, peak: float, steps: int, attention: str = 'auto',
               keep_params: bool = False) -> dict[str, Any]:
  """Compiles the train step with the least remat that fits, then times `steps` steps run back
  to back (one host sync at the end, as the training loop runs)."""
  cfg = config_for(shape, attention)
  tx = state_lib.optimizer(cfg.train)
  rt = runtime_lib.build_runtime(cfg)
  abstract, _ = state_lib.state_shardings(rt, tx)
  params = rt.num_params
  impl = attention_lib.resolve(attention, jnp.bfloat16, shape.seq, shape.heads,
                               shape.d_model // shape.heads)
  limit = (jax.devices()[0].memory_stats() or {}).get('bytes_limit')
  t0 = time.perf_counter()
  for remat in remat_candidates(cfg, params, limit, flash=impl == 'cudnn'):
    cfg = config_lib.replace(cfg, **{'model.remat': remat})
    rt = runtime_lib.build_runtime(cfg)
    _, shardings = state_lib.state_shardings(rt, tx)
    step_fn = step_lib.jit_train_step(rt, tx, shardings, len(LANGS), 1)
    compiled = step_fn.lower(abstract, _abstract_batch(cfg, rt.mesh)).compile()
    need = _compiled_bytes(compiled)
    if not limit or need is None or need < 0.95 * limit:
      break
  compile_s = time.perf_counter() - t0
  state = state_lib.init_state(rt, tx, cfg.seed)
  batches = [rt.put_batch(b) for b in synthetic_batches(cfg)]
  for i in range(2):  # warm-up: first touches of the buffers
    state, m = compiled(state, batches[i % 2])
  jax.block_until_ready(m)
  t = time.perf_counter()
  for i in range(steps):
    state, m = compiled(state, batches[i % 2])
  jax.block_until_ready(m)
  step_s = (time.perf_counter() - t) / steps
  tokens = shape.batch * shape.seq
  flops = model_lib.flops_per_token(rt.model.cfg, shape.seq) * tokens
  out = {'shape': shape.name, 'label': shape.label(), 'params': params, 'remat': cfg.model.remat,
         'attention': impl, 'step_ms': 1e3 * step_s, 'tokens_per_s': tokens / step_s,
         'model_tflops_per_s': flops / step_s / 1e12, 'mfu': flops / step_s / peak,
         'compile_s': compile_s, 'memory_gib': None if need is None else need / GIB,
         'loss': float(m['loss'])}
  if keep_params:
    out['_params'] = state.params
  return out


# Probes and sampling ------------------------------------------------------------------------

def probe_case(shape: Shape, params) -> dict[str, Any]:
  """The probe walk's passes on one batch against the plain forward pass (probe_bench's timing)."""
  cfg = config_for(shape)
  rt = runtime_lib.build_runtime(cfg)
  batch = rt.put_batch(synthetic_batches(cfg, 1)[0])
  out = probe_bench.time_probes(rt.model, params, batch, len(LANGS), reps=3)
  impl = attention_lib.resolve('auto', jnp.bfloat16, shape.seq, shape.heads,
                               shape.d_model // shape.heads)
  return {'shape': shape.name, 'label': shape.label(), 'attention': impl,
          'speed_vs_forward': 1.0 / out['ratio'], **out}


def sample_case(shape: Shape, params, batch: int, prompt: int, new: int) -> dict[str, Any]:
  """Greedy KV-cache generation of `new` tokens for `batch` prompts of `prompt` tokens; no EOS
  (id -1), so every row decodes to the end. Timed on the second call (the first compiles)."""
  sampler = sampling.Sampler(model_lib.build_model(config_for(shape).model), eos_id=-1)
  rng = np.random.default_rng(0)
  prompts = [rng.integers(4, shape.vocab, prompt).tolist() for _ in range(batch)]
  settings = sampling.SampleSettings(max_new_tokens=new, chunk=min(64, new), bucket=prompt)
  t0 = time.perf_counter()
  sampler.generate(params, prompts, settings, jax.random.PRNGKey(0))
  first_s = time.perf_counter() - t0
  t = time.perf_counter()
  rows = sampler.generate(params, prompts, settings, jax.random.PRNGKey(1))
  seconds = time.perf_counter() - t
  produced = sum(map(len, rows))
  return {'shape': shape.name, 'label': shape.label(), 'batch': batch, 'prompt': prompt,
          'new_tokens': new, 'tokens': produced, 'seconds': seconds,
          'tokens_per_s': produced / seconds, 'ms_per_step': 1e3 * seconds / new,
          'compile_s': first_s - seconds}


# The run ------------------------------------------------------------------------------------

class Budget:
  """Runs sections in order until the time budget is spent; later ones are recorded as skipped."""

  def __init__(self, seconds: float):
    self.seconds, self.start, self.skipped = seconds, time.perf_counter(), []

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def run(self, name: str, fn: Callable[[], Any]) -> Any:
    if self.elapsed() > self.seconds:
      self.skipped.append(f'{name}: time budget ({self.seconds:.0f}s) spent')
      print(f'gpu_bench: skipping {name} (time budget spent)', flush=True)
      return None
    t = time.perf_counter()
    print(f'gpu_bench: {name} ...', flush=True)
    try:
      out = fn()
    except Exception as e:  # pylint: disable=broad-except  (one failed case must not end the run)
      if isinstance(e, BabelError):
        reason = str(e)
      else:
        reason = f'{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ""}'
      self.skipped.append(f'{name}: {reason}')
      print(f'gpu_bench: {name} failed: {reason}', flush=True)
      return None
    print(f'gpu_bench: {name} done in {time.perf_counter() - t:.1f}s', flush=True)
    return out


def run(plan: Plan, budget_s: float) -> dict[str, Any]:
  """Every section of `plan`, most important first; returns all figures (JSON-ready)."""
  b = Budget(budget_s)
  result: dict[str, Any] = {'device': device_info()}
  peak = b.run('peak', lambda: measure_peak(plan.peak_n))
  result['peak_flops'] = peak
  if not peak:
    raise SystemExit('error: could not measure the matmul peak; see the lines above')
  big_train, *rest = sorted(plan.train, key=lambda s: s.name != plan.big.name)
  trained = {}
  one = b.run(f'train {big_train.name}',
              lambda: train_case(big_train, peak, plan.steps, keep_params=True))
  if one:
    trained[big_train.name] = one
  params = one.pop('_params') if one else None
  if params is None:  # the big shape did not train: fresh parameters for probes and sampling
    params = b.run(f'init {plan.big.name}', lambda: _init_params(plan.big))
  if params is not None:
    result['probes'] = b.run(f'probes {plan.big.name}', lambda: probe_case(plan.big, params))
    result['sampling'] = b.run(f'sampling {plan.big.name}', lambda: sample_case(
        plan.big, params, plan.sample_batch, plan.sample_prompt, plan.sample_new))
  params = None  # frees the big model before the other shapes
  for shape in rest:
    out = b.run(f'train {shape.name}', lambda s=shape: train_case(s, peak, plan.steps))
    if out:
      trained[shape.name] = out
  result['train'] = [trained[s.name] for s in plan.train if s.name in trained]
  result['attention'] = []
  for impl in plan.attention_impls:
    same = trained.get(plan.attention_shape.name)
    if same and same['attention'] == impl and plan.attention_shape in plan.train:
      result['attention'].append({**same, 'same_run_as': 'train'})  # what 'auto' chose
      continue
    out = b.run(f'attention {impl}', lambda i=impl: train_case(
        plan.attention_shape, peak, plan.steps, attention=i))
    if out:
      result['attention'].append(out)
  result['skipped'] = b.skipped
  result['seconds'] = b.elapsed()
  return result


def _init_params(shape: Shape):
  cfg = config_for(shape)
  return runtime_lib.build_runtime(cfg).init_params(cfg.seed)


def table(result: dict[str, Any], mode: str) -> str:
  """The figures as a markdown table, with a header line naming the device and the peak."""
  d = result['device']
  mem = f'{d["memory_gib"]:.1f} GiB' if d.get('memory_gib') else 'memory n/a'
  v = d['versions']
  head = (f'gpu_bench ({mode}): {d["device"]} ({d["platform"]}, {mem}'
          f'{", " + d["nvidia_smi"] if d.get("nvidia_smi") else ""}), jax {v.get("jax")}, '
          f'flax {v.get("flax")}; bf16 matmul peak {result["peak_flops"] / 1e12:.2f} TFLOP/s '
          f'measured; {result["seconds"]:.0f}s in all')
  rows = [('section', 'case', 'tokens/s', 'MFU', 'notes')]
  for r in result.get('train', []):
    rows.append(('train', r['label'], f'{r["tokens_per_s"]:,.0f}', f'{100 * r["mfu"]:.1f}%',
                 f'{r["params"] / 1e6:.{0 if r["params"] >= 1e7 else 2}f}M params, step {r["step_ms"]:.1f} ms, remat '
                 f'{r["remat"]}, attention {r["attention"]}, compile {r["compile_s"]:.0f}s'))
  for r in result.get('attention', []):
    rows.append(('attention', f'{r["shape"]} {r["attention"]}', f'{r["tokens_per_s"]:,.0f}',
                 f'{100 * r["mfu"]:.1f}%', f'step {r["step_ms"]:.1f} ms, remat {r["remat"]}'))
  p = result.get('probes')
  if p:
    rows.append(('probes', f'{p["shape"]} neurons + lens', f'{p["probe_tokens_per_s"]:,.0f}', '',
                 f'{p["speed_vs_forward"]:.2f}x the plain forward '
                 f'({p["plain_tokens_per_s"]:,.0f} tokens/s)'))
  s = result.get('sampling')
  if s:
    rows.append(('sampling', f'{s["shape"]} KV cache, greedy', f'{s["tokens_per_s"]:,.0f}', '',
                 f'batch {s["batch"]}, prompt {s["prompt"]}, {s["new_tokens"]} new tokens, '
                 f'{s["ms_per_step"]:.1f} ms per step'))
  lines = [head, ''] + ['| ' + ' | '.join(r) + ' |' for r in rows[:1]]
  lines.append('|' + '---|' * len(rows[0]))
  lines += ['| ' + ' | '.join(r) + ' |' for r in rows[1:]]
  lines += [f'skipped: {s}' for s in result.get('skipped', [])]
  return '\n'.join(lines)


def _write(path: str, text: str) -> None:
  io.atomic_write(path, text)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/gpu_bench', help='folder for results.{md,json}')
  parser.add_argument('--budget-s', type=float, default=180.0,
                      help='no section starts after this many seconds (default 180)')
  parser.add_argument('--cpu-smoke', action='store_true',
                      help='tiny shapes on the CPU: the same code path, no GPU needed')
  args = parser.parse_args(argv)
  backend = jax.default_backend()
  if backend != 'gpu' and not args.cpu_smoke:
    print(f'error: no GPU visible to JAX (backend {backend!r}, devices {jax.devices()}); install '
          "JAX's CUDA plugin (launch/gpu_bench.sh does) or run with --cpu-smoke", file=sys.stderr)
    return 2
  mode = 'cpu-smoke' if args.cpu_smoke else 'gpu'
  info = device_info()
  print(f'gpu_bench: {info["device"]} x{info["count"]} ({info["platform"]}), '
        f'{info.get("nvidia_smi", "")} {json.dumps(info["versions"])}', flush=True)
  result = run(SMOKE if args.cpu_smoke else GPU, args.budget_s)
  result['mode'] = mode
  text = table(result, mode)
  os.makedirs(args.out, exist_ok=True)
  _write(os.path.join(args.out, 'results.json'), json.dumps(result, indent=1, default=float))
  _write(os.path.join(args.out, 'results.md'), text + '\n')
  print(text, flush=True)
  print(f'gpu_bench: wrote {os.path.join(args.out, "results.json")} and results.md', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
