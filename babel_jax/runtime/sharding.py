"""Device mesh and the logical-axis rules that place parameters and activations on it.

Model code names axes logically ('embed', 'mlp', 'vocab', ...); `RULES` maps those names to the
mesh axes 'data', 'fsdp' and 'tensor' (MaxText-style). Changing a parallelism strategy means
changing this table or the mesh shape in the config, never the model.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from babel_jax.config import MESH_AXES
from babel_jax.errors import ConfigError

# Logical axis -> mesh axes. Parameters shard over 'fsdp' on their embed axis (ZeRO-3 style) and
# over 'tensor' on heads / mlp / vocab (Megatron style); the batch splits over 'data' and 'fsdp'.
RULES: tuple[tuple[str, Any], ...] = (
    ('batch', ('data', 'fsdp')),
    ('length', None),
    ('embed', 'fsdp'),
    ('vocab', 'tensor'),
    ('mlp', 'tensor'),
    ('heads', 'tensor'),
    ('kv', None),
    ('layers', None),
    ('act_embed', None),
    ('act_mlp', 'tensor'),
    ('act_heads', 'tensor'),
    ('act_vocab', 'tensor'),
)


# Common slices: devices (chips JAX sees), the mesh over them, HBM per device, bf16 peak per
# device. TPU v4 / v5p chips are one JAX device each (v5p-64 = 64 TensorCores = 32 chips).
PRESETS: dict[str, dict[str, Any]] = {
    'v4-32': {'devices': 16, 'data': 1, 'fsdp': 16, 'tensor': 1, 'device_memory_gb': 32,
              'peak_tflops': 275},
    'v5p-64': {'devices': 32, 'data': 1, 'fsdp': 32, 'tensor': 1, 'device_memory_gb': 95,
               'peak_tflops': 459},
    'v5e-256': {'devices': 256, 'data': 16, 'fsdp': 16, 'tensor': 1, 'device_memory_gb': 16,
                'peak_tflops': 197},
    '8xh100': {'devices': 8, 'data': 1, 'fsdp': 8, 'tensor': 1, 'device_memory_gb': 80,
               'peak_tflops': 989},
    # One GPU. Dense bf16 peak by the datasheet; measured on the spot, an H200's 8192^3 bf16
    # matmul runs at ~790 TFLOP/s on random data (MFU figures use the measured peak).
    'h100': {'devices': 1, 'data': 1, 'fsdp': 1, 'tensor': 1, 'device_memory_gb': 80,
             'peak_tflops': 989},
    'h200': {'devices': 1, 'data': 1, 'fsdp': 1, 'tensor': 1, 'device_memory_gb': 140,
             'peak_tflops': 989},
}


def preset(mesh_cfg) -> dict[str, Any] | None:
  """The `mesh.preset` entry, or None."""
  if not mesh_cfg.preset:
    return None
  if mesh_cfg.preset not in PRESETS:
    raise ConfigError(f'mesh.preset={mesh_cfg.preset!r} is not known; known: {sorted(PRESETS)}')
  return PRESETS[mesh_cfg.preset]


def mesh_shape(mesh_cfg, num_devices: int) -> dict[str, int]:
  """Resolves the configured mesh (with -1 meaning 'the rest') against the device count."""
  p = preset(mesh_cfg)
  if p:
    if num_devices != p['devices']:
      raise ConfigError(f'mesh.preset={mesh_cfg.preset!r} is for {p["devices"]} devices, but '
                        f'{num_devices} devices are available')
    return {a: p[a] for a in ('data', 'fsdp', 'tensor')}
  fixed = mesh_cfg.fsdp * mesh_cfg.tensor
  if fixed <= 0:
    raise ConfigError(f'mesh.fsdp and mesh.tensor must be >= 1, got {mesh_cfg.fsdp}, '
                      f'{mesh_cfg.tensor}')
  data = mesh_cfg.data
  if data == -1:
    if num_devices % fixed:
      raise ConfigError(f'mesh fsdp={mesh_cfg.fsdp} x tensor={mesh_cfg.tensor} = {fixed} does '
                        f'not divide the {num_devices} available devices')
    data = num_devices // fixed
  shape = {'data': data, 'fsdp': mesh_cfg.fsdp, 'tensor': mesh_cfg.tensor}
  if math.prod(shape.values()) != num_devices:
    raise ConfigError(
        f'mesh data={shape["data"]} x fsdp={shape["fsdp"]} x tensor={shape["tensor"]} = '
        f'{math.prod(shape.values())} devices, but {num_devices} devices are available')
  return shape


def make_mesh(mesh_cfg) -> Mesh:
  """Builds the ('data', 'fsdp', 'tensor') mesh over the configured devices."""
  devices = jax.devices()
  if mesh_cfg.num_devices:
    if mesh_cfg.num_devices > len(devices):
      raise ConfigError(f'mesh.num_devices={mesh_cfg.num_devices} but only {len(devices)} '
                        f'devices exist')
    devices = devices[:mesh_cfg.num_devices]
  shape = mesh_shape(mesh_cfg, len(devices))
  dims = tuple(shape[a] for a in MESH_AXES)
  return jax.make_mesh(dims, MESH_AXES, devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def logical_sharding(mesh: Mesh, logical_specs: Any) -> Any:
  """Maps a pytree of logical PartitionSpecs to NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, RULES)


def with_rules(fn):
  """`fn` run under the logical-axis rules, so the model's logical names resolve to the mesh."""
  def wrapped(*args, **kwargs):
    with nn.logical_axis_rules(RULES):
      return fn(*args, **kwargs)
  return wrapped


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of [batch, length] input arrays: batch over data and fsdp."""
  return NamedSharding(mesh, nn.logical_to_mesh_axes(('batch', 'length'), RULES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_batch(mesh: Mesh, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Places this host's rows of a global batch onto the mesh (one call works on multi-host)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def replicated_fraction(shardings: Any, shapes: Any) -> float:
  """Share of parameters (by count) whose sharding leaves them fully replicated."""
  total = replicated_count = 0
  for sh, x in zip(jax.tree.leaves(shardings), jax.tree.leaves(shapes)):
    n = math.prod(x.shape)
    total += n
    if all(p is None for p in sh.spec):
      replicated_count += n
  return replicated_count / max(total, 1)
