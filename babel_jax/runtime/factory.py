"""The runtime of a config, built once: mesh, model, abstract parameters and their shardings.

Training, probes, evaluation, benchmarks and `--mode plan` all start from `build_runtime(cfg)`, so they
agree on where every parameter lives. Parameter shardings come from the logical axis names the
model attaches to its parameters (`sharding.RULES`); no optimizer is needed to find them. A
process builds each runtime once: the many runs of a study share it, and with it every function
jitted against it (traced and compiled once).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from babel_jax import model as model_lib
from babel_jax.runtime import sharding


@dataclasses.dataclass(frozen=True)
class Runtime:
  """A config's model on a mesh (a real one, or an abstract one for planning)."""
  seq_len: int  # the training length the parameters are initialised for
  mesh: Any  # jax.sharding.Mesh or AbstractMesh
  model: model_lib.Transformer
  abstract_params: Any  # jax.ShapeDtypeStruct per parameter, carrying its sharding
  param_shardings: Any  # NamedSharding per parameter

  @property
  def num_params(self) -> int:
    return model_lib.param_count(self.abstract_params)

  @functools.cached_property
  def _init(self):
    return jax.jit(lambda rng: nn.unbox(model_lib.init_boxed(self.model, rng, self.seq_len)),
                   out_shardings=self.param_shardings)

  def init_params(self, seed: int) -> Any:
    """Fresh parameters, created directly in their sharded layout (no host-side full copy)."""
    return self._init(jax.random.PRNGKey(seed))

  def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This host's rows of a global batch, placed on the mesh."""
    return sharding.put_batch(self.mesh, batch)

  def replicated(self, tree: Any) -> Any:
    """Places a pytree on every device of the mesh."""
    return jax.device_put(tree, sharding.replicated(self.mesh))


_BUILT: dict[str, Runtime] = {}


def build_runtime(cfg, mesh=None) -> Runtime:
  """The runtime of `cfg` on `mesh` (default: the mesh `cfg.mesh` describes on this host; that
  one is built once per process for equal model, mesh and sequence length)."""
  if mesh is None:
    key = json.dumps([cfg.model.to_dict(), cfg.mesh.to_dict(), cfg.data.seq_len],
                     sort_keys=True)
    if key not in _BUILT:
      _BUILT[key] = build_runtime(cfg, sharding.make_mesh(cfg.mesh))
    return _BUILT[key]
  model = model_lib.build_model(cfg.model)
  boxed = jax.eval_shape(lambda rng: model_lib.init_boxed(model, rng, cfg.data.seq_len),
                         jax.random.PRNGKey(0))
  shardings = sharding.logical_sharding(mesh, nn.get_partition_spec(boxed))
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          nn.unbox(boxed), shardings)
  return Runtime(cfg.data.seq_len, mesh, model, abstract, shardings)
