"""The jitted train step (gradient accumulation by scanning micro-batches, losses.scan_sum)."""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding
from babel_jax.train import losses
from babel_jax.train import state as state_lib
from babel_jax.train.state import TrainState


def _metrics(sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
  return {'loss': sums['loss_sum'] / jnp.maximum(sums['count'], 1.0),
          'lang_loss': sums['lang_loss_sum'] / jnp.maximum(sums['lang_count'], 1.0),
          'lang_tokens': sums['lang_count'], 'tokens': sums['count']}


def train_step(state: TrainState, batch, *, model, tx, num_langs: int, grad_accum: int):
  """One optimizer step over `grad_accum` micro-batches; returns (new state, metrics)."""

  def grads_of(micro):
    def loss_fn(params):
      sums = losses.loss_sums(model, params, micro, num_langs)
      return sums['loss_sum'], sums
    (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return grads, sums

  if grad_accum == 1:
    grads, sums = grads_of(batch)
  else:
    micro = jax.tree.map(
        lambda x: x.reshape(grad_accum, x.shape[0] // grad_accum, *x.shape[1:]), batch)
    grads, sums = losses.scan_sum(grads_of, micro)
  # Gradients of the summed loss, normalised once: every token weighs the same across micro-batches.
  grads = jax.tree.map(lambda g: g / jnp.maximum(sums['count'], 1.0), grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = _metrics(sums)
  metrics['grad_norm'] = optax.tree.norm(grads)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            rng=jax.random.fold_in(state.rng, state.step))
  return new_state, metrics


class Compiled(NamedTuple):
  """What a training run needs besides its data, for one runtime and training settings."""
  tx: optax.GradientTransformation
  abstract: TrainState  # shapes and shardings of the train state
  shardings: TrainState
  step: Any  # the jitted train step (donates its state)
  init_opt: Any  # jitted: parameters -> a fresh optimizer state, in its shardings


_COMPILED: dict[tuple, Compiled] = {}


def compiled(rt: runtime_lib.Runtime, train_cfg, num_langs: int) -> Compiled:
  """Made once per process for equal runtime and settings, so a study's many runs trace and
  compile their train step once."""
  key = (id(rt), json.dumps(train_cfg.to_dict(), sort_keys=True), num_langs)
  if key not in _COMPILED:
    tx = state_lib.optimizer(train_cfg)
    abstract, shardings = state_lib.state_shardings(rt, tx)
    _COMPILED[key] = Compiled(
        tx, abstract, shardings,
        jit_train_step(rt, tx, shardings, num_langs, train_cfg.grad_accum),
        jax.jit(tx.init, out_shardings=shardings.opt_state))
  return _COMPILED[key]


def jit_train_step(rt: runtime_lib.Runtime, tx, state_sh: TrainState, num_langs: int,
                   grad_accum: int):
  """The train step jitted with explicit shardings; the input state is donated."""
  fn = functools.partial(train_step, model=rt.model, tx=tx, num_langs=num_langs,
                         grad_accum=grad_accum)
  batch_sh = sharding.batch_sharding(rt.mesh)
  return jax.jit(sharding.with_rules(fn), in_shardings=(state_sh, batch_sh),
                 out_shardings=(state_sh, sharding.replicated(rt.mesh)), donate_argnums=0)
