"""Train state, optimizer and sharded initialisation.

The state is a plain pytree (step, params, opt_state, rng). Its sharding is derived once from
the logical axis names the model attaches to its parameters, so init, the train step and
checkpoint restore all agree on where every array lives.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from babel_jax import model as model_lib
from babel_jax import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def lr_schedule(train_cfg) -> optax.Schedule:
  """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=train_cfg.lr, warmup_steps=train_cfg.warmup_steps,
      decay_steps=max(train_cfg.steps, train_cfg.warmup_steps + 1),
      end_value=train_cfg.lr * train_cfg.min_lr_ratio)


def _decay_mask(params: Any) -> Any:
  """Weight decay on matrices only: norms scales and biases (ndim 1) are not decayed."""
  return jax.tree.map(lambda x: x.ndim > 1, params)


def optimizer(train_cfg) -> optax.GradientTransformation:
  clip = (optax.clip_by_global_norm(train_cfg.clip_norm) if train_cfg.clip_norm > 0
          else optax.identity())
  return optax.chain(
      clip,
      optax.adamw(lr_schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2, eps=train_cfg.eps,
                  weight_decay=train_cfg.weight_decay, mask=_decay_mask))


def _boxed_state(model, tx, rng, seq_len) -> TrainState:
  params = model_lib.init_boxed(model, rng, seq_len)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=tx.init(params), rng=rng)


def state_shardings(model, tx, mesh: Mesh, seq_len: int) -> tuple[TrainState, TrainState]:
  """(abstract unboxed state, its NamedShardings), computed without allocating anything."""
  abstract_boxed = jax.eval_shape(
      lambda r: _boxed_state(model, tx, r, seq_len), jax.random.PRNGKey(0))
  shardings = sharding.logical_sharding(mesh, nn.get_partition_spec(abstract_boxed))
  abstract = nn.unbox(abstract_boxed)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  return abstract, shardings


def init_state(model, tx, mesh: Mesh, seed: int, seq_len: int) -> TrainState:
  """Fresh state, created directly in its sharded layout (no host-side full copy)."""
  _, shardings = state_shardings(model, tx, mesh, seq_len)
  init = jax.jit(lambda r: nn.unbox(_boxed_state(model, tx, r, seq_len)),
                 out_shardings=shardings)
  return init(jax.random.PRNGKey(seed))


def fresh_opt_state(tx, params: Any, shardings: TrainState) -> Any:
  """Optimizer state for given parameters (continual pre-training starts from a fresh one)."""
  return jax.jit(tx.init, out_shardings=shardings.opt_state)(params)
