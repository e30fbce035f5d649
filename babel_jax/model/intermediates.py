"""The typed pytree of what the model exposes to probes (after Flax examples/gemma `sow_lib`).

Blocks `sow` the residual stream after each layer ('resid') and the MLP activations after the
nonlinearity ('mlp_act') into Flax's 'intermediates' collection. `Intermediates.of` turns that
collection, whichever way the layers were built (a list of modules or one scanned module), into
per-layer stacked arrays, so probes index fields instead of string paths.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

RESID, MLP_ACT = 'resid', 'mlp_act'  # the names the blocks sow under


@flax.struct.dataclass
class Intermediates:
  resid_NxBxLxD: jax.Array  # residual stream after each layer
  mlp_act_NxBxLxF: jax.Array  # MLP hidden activations after the nonlinearity

  @classmethod
  def of(cls, collection: dict[str, Any], num_layers: int, scanned: bool) -> 'Intermediates':
    """Stacks a sown 'intermediates' collection per layer."""
    if scanned:  # nn.scan stacked the layers already: one entry with a leading layer axis
      layers = collection['layers']
      return cls(resid_NxBxLxD=layers[RESID][0], mlp_act_NxBxLxF=layers['mlp'][MLP_ACT][0])
    per_layer = [collection[f'layer_{i}'] for i in range(num_layers)]
    return cls(resid_NxBxLxD=jnp.stack([l[RESID][0] for l in per_layer]),
               mlp_act_NxBxLxF=jnp.stack([l['mlp'][MLP_ACT][0] for l in per_layer]))
