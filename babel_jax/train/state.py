"""Train state, optimizer and sharded initialisation.

The state is a plain pytree (step, params, opt_state, rng). Its sharding is derived from the
runtime (babel_jax.runtime: the parameters' logical axis names), so init, the train step and
checkpoint restore all agree on where every array lives.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from babel_jax import model as model_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def lr_schedule(train_cfg) -> optax.Schedule:
  """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step. The first
  update already has lr / warmup_steps (not 0), so the checkpoint at step 1 differs from step 0."""
  return optax.warmup_cosine_decay_schedule(
      init_value=train_cfg.lr / max(train_cfg.warmup_steps, 1), peak_value=train_cfg.lr,
      warmup_steps=train_cfg.warmup_steps,
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


def state_shardings(rt: runtime_lib.Runtime, tx) -> tuple[TrainState, TrainState]:
  """(abstract unboxed state, its NamedShardings), computed without allocating anything. The
  parameters' come from the runtime; the optimizer state's from the same logical axis names."""
  boxed_opt = jax.eval_shape(
      lambda r: tx.init(model_lib.init_boxed(rt.model, r, rt.seq_len)), jax.random.PRNGKey(0))
  opt_sh = sharding.logical_sharding(rt.mesh, nn.get_partition_spec(boxed_opt))
  rep = sharding.replicated(rt.mesh)
  shardings = TrainState(step=rep, params=rt.param_shardings, opt_state=opt_sh, rng=rep)
  abstract_opt = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                              nn.unbox(boxed_opt), opt_sh)
  key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  abstract = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32, sharding=rep),
                        params=rt.abstract_params, opt_state=abstract_opt,
                        rng=jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=rep))
  return abstract, shardings


def init_state(rt: runtime_lib.Runtime, tx, seed: int) -> TrainState:
  """Fresh state, created directly in its sharded layout (no host-side full copy)."""
  _, shardings = state_shardings(rt, tx)
  params = rt.init_params(seed)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=fresh_opt_state(tx, params, shardings),
                    rng=jax.random.PRNGKey(seed))


def fresh_opt_state(tx, params: Any, shardings: TrainState) -> Any:
  """Optimizer state for given parameters (continual pre-training starts from a fresh one)."""
  return jax.jit(tx.init, out_shardings=shardings.opt_state)(params)
