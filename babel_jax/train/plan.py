"""`--mode plan`: what a run needs per device, from abstract shapes only (nothing allocated).

Works for meshes this machine does not have: shardings are computed on a `jax.sharding.
AbstractMesh`, so a laptop can check a v5p-64 or 8xH100 layout. Parameter, gradient and optimizer
memory come from each array's per-device shard shape. Activation memory is an estimate (Korthikanti
et al. 2022, "Reducing activation recomputation"): per layer and token, 34 d + 5 h L bytes at 16
bits without remat; only the matmul outputs (~18 d bytes) with remat='dots'; only the layer input
(2 d bytes) with remat='full', plus one layer's working set; and the float32 logits with the
softmax the cross-entropy keeps, over the vocabulary shard.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding
from babel_jax.train import state as state_lib

GIB = 2**30


def _shard_bytes(abstract: Any, shardings: Any) -> float:
  total = 0
  for x, sh in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)):
    total += math.prod(sh.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
  return float(total)


def activation_bytes(cfg, shape: dict[str, int], flash: bool = False) -> dict[str, float]:
  """Estimated activation memory per device for one micro-batch (see the module docstring);
  `flash`: a fused attention kernel (cuDNN) that never stores the [L, L] scores."""
  m = cfg.model.resolved()
  batch_devices = shape['data'] * shape['fsdp']
  micro = cfg.train.batch_size / cfg.train.grad_accum / batch_devices
  tokens = micro * cfg.data.seq_len
  scale = np.dtype(cfg.model.dtype).itemsize / 2  # formulas are for 16-bit activations
  tp = shape['tensor']
  scores = 0 if flash else 5 * m.num_heads * cfg.data.seq_len / tp
  full_layer = tokens * (m.d_model * (10 + 24 / tp) + scores)
  per_layer = {'none': full_layer, 'dots': tokens * m.d_model * (2 + 16 / tp),
               'full': tokens * m.d_model * 2}[cfg.model.remat] * scale
  working = 0 if cfg.model.remat == 'none' else full_layer * scale
  logits = 2 * tokens * m.vocab_size / tp * 4
  return {'layers': per_layer * m.num_layers, 'working_layer': working, 'logits': logits,
          'total': per_layer * m.num_layers + working + logits, 'micro_batch_per_device': micro}


def plan(cfg) -> dict[str, Any]:
  """Sizes and per-device memory of the configured run on its (possibly abstract) mesh."""
  cfg = config_lib.validate(cfg)
  preset = sharding.preset(cfg.mesh)
  devices = preset['devices'] if preset else (cfg.mesh.num_devices or jax.device_count())
  shape = sharding.mesh_shape(cfg.mesh, devices)
  # Auto axes, as sharding.make_mesh builds (AbstractMesh defaults to Explicit after JAX 0.11.0).
  abstract_mesh = jax.sharding.AbstractMesh(
      tuple(shape[a] for a in config_lib.MESH_AXES), config_lib.MESH_AXES,
      axis_types=(jax.sharding.AxisType.Auto,) * len(config_lib.MESH_AXES))
  rt = runtime_lib.build_runtime(cfg, abstract_mesh)
  abstract, shardings = state_lib.state_shardings(rt, state_lib.optimizer(cfg.train))
  params = rt.num_params
  per_token = model_lib.flops_per_token(rt.model.cfg, cfg.data.seq_len)
  param_b = _shard_bytes(abstract.params, shardings.params)
  opt_b = _shard_bytes(abstract.opt_state, shardings.opt_state)
  act = activation_bytes(cfg, shape)
  total = 2 * param_b + opt_b + act['total']  # params + gradients + optimizer + activations
  memory_gb = cfg.mesh.device_memory_gb or (preset['device_memory_gb'] if preset else 0.0)
  out = {'devices': devices, 'mesh': shape, 'preset': cfg.mesh.preset or None,
         'params': params, 'flops_per_token': per_token,
         'tokens_per_step': cfg.train.batch_size * cfg.data.seq_len,
         'replicated_fraction': sharding.replicated_fraction(shardings.params, abstract.params),
         'per_device_gib': {'params': param_b / GIB, 'gradients': param_b / GIB,
                            'optimizer': opt_b / GIB, 'activations': act['total'] / GIB,
                            'total': total / GIB},
         'micro_batch_per_device': act['micro_batch_per_device'],
         'device_memory_gib': memory_gb or None, 'warnings': []}
  if act['micro_batch_per_device'] < 1 or act['micro_batch_per_device'] % 1:
    out['warnings'].append(
        f'train.batch_size={cfg.train.batch_size} / grad_accum={cfg.train.grad_accum} gives '
        f'{act["micro_batch_per_device"]:g} sequences per device on {shape["data"] * shape["fsdp"]}'
        ' batch shards; it must be a whole number >= 1')
  if memory_gb and total / GIB > 0.9 * memory_gb:
    out['warnings'].append(
        f'needs ~{total / GIB:.1f} GiB per device, over 90% of {memory_gb:g} GiB: raise '
        'mesh.fsdp, use model.remat=full or more train.grad_accum')
  if preset and peak_flops(preset):
    out['step_seconds_at_50pct_mfu'] = (per_token * out['tokens_per_step'] /
                                        (0.5 * peak_flops(preset) * devices))
  return out


def peak_flops(preset: dict[str, Any]) -> float:
  return preset.get('peak_tflops', 0) * 1e12


def report(result: dict[str, Any]) -> str:
  g = result['per_device_gib']
  lines = [
      f'plan: {result["params"] / 1e9:.3f}B params, {result["flops_per_token"] / 1e9:.2f} GFLOP '
      f'per token, {result["tokens_per_step"]:,} tokens per step',
      f'mesh {result["mesh"]} on {result["devices"]} devices'
      f'{" (preset " + result["preset"] + ")" if result["preset"] else ""}; '
      f'{100 * result["replicated_fraction"]:.2f}% of parameters replicated; '
      f'{result["micro_batch_per_device"]:g} sequences per device per micro-batch',
      f'per device: params {g["params"]:.2f} GiB + gradients {g["gradients"]:.2f} GiB + '
      f'optimizer {g["optimizer"]:.2f} GiB + activations ~{g["activations"]:.2f} GiB = '
      f'{g["total"]:.2f} GiB' + (f' of {result["device_memory_gib"]:g} GiB'
                                 if result['device_memory_gib'] else '')]
  if 'step_seconds_at_50pct_mfu' in result:
    lines.append(f'a step takes ~{result["step_seconds_at_50pct_mfu"]:.2f}s at 50% MFU')
  lines += [f'WARNING: {w}' for w in result['warnings']]
  return '\n'.join(lines)
