"""Functional model API: parameters are a pytree and `forward` is a pure function of them."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from babel_jax.model.intermediates import Intermediates
from babel_jax.model.transformer import ModelConfig, Transformer, flops_per_token, param_count

__all__ = ['Intermediates', 'ModelConfig', 'Transformer', 'build_model', 'flops_per_token',
           'forward', 'init_boxed', 'param_count']


def build_model(model_cfg) -> Transformer:
  """The model a config's `model` section describes: the one model factory."""
  return Transformer(model_cfg.resolved())


def init_boxed(model: Transformer, rng: jax.Array, seq_len: int) -> Any:
  """Parameters with their logical-axis boxes (nn.Partitioned); `nn.unbox` for plain arrays."""
  dummy = jnp.zeros((1, seq_len), jnp.int32)
  return model.init(rng, dummy, dummy, dummy)['params']


def forward(model: Transformer, params: Any, batch: dict[str, jax.Array], *,
            intermediates: bool = False, neuron_mask_NxF: jax.Array | None = None):
  """Logits [B, L, V]; with `intermediates=True` also the per-layer `Intermediates`.

  Only the parameter pytree and this function are needed by training, probes and evaluation.
  """
  args = (batch['tokens'], batch['positions'], batch['segment_ids'], neuron_mask_NxF)
  if not intermediates:
    return model.apply({'params': params}, *args)
  logits, state = model.apply({'params': params}, *args, mutable=['intermediates'])
  return logits, Intermediates.of(state['intermediates'], model.cfg.num_layers,
                                  model.cfg.scan_layers)
