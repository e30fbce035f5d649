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

from babel_jax.config import ConfigError, MESH_AXES

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


def mesh_shape(mesh_cfg, num_devices: int) -> dict[str, int]:
  """Resolves the configured mesh (with -1 meaning 'the rest') against the device count."""
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
