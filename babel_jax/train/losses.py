"""Token losses, one home for training and the probes: cross-entropy (with a hand-written
backward pass on CPU), summed overall and per language, and summed over a stack of batches.

The generic autodiff of log-softmax recomputes exp(logits) in the backward pass; over a
[tokens, vocab] array that second pass costs as much as a matmul on CPUs. There the forward pass
keeps the softmax it already computed and the backward pass is one fused elementwise op. On GPUs
and TPUs the recomputation is one fused, memory-bound pass, cheaper than writing and re-reading
the kept softmax, so autodiff of the same formula is used (see `model.backend`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.model import backend


def cross_entropy(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
  """-log softmax(logits)[target] per position, float32 [B, L]."""
  if backend.hand_written_backward():
    return _cpu_cross_entropy(logits_BxLxV, targets_BxL)
  return _forward(logits_BxLxV, targets_BxL, keep_softmax=False)[0]


@jax.custom_vjp
def _cpu_cross_entropy(logits_BxLxV, targets_BxL):
  return _forward(logits_BxLxV, targets_BxL)[0]


def _forward(logits_BxLxV, targets_BxL, keep_softmax: bool = True):
  m_BxLx1 = jax.lax.stop_gradient(logits_BxLxV.max(-1, keepdims=True))
  e_BxLxV = jnp.exp(logits_BxLxV - m_BxLx1)
  s_BxLx1 = e_BxLxV.sum(-1, keepdims=True)
  target_BxLx1 = jnp.take_along_axis(logits_BxLxV, targets_BxL[..., None], axis=-1)
  loss_BxL = (jnp.log(s_BxLx1) + m_BxLx1 - target_BxLx1)[..., 0]
  return loss_BxL, (e_BxLxV / s_BxLx1 if keep_softmax else None, targets_BxL)


def _backward(res, g_BxL):
  probs_BxLxV, targets_BxL = res
  onehot_BxLxV = jax.nn.one_hot(targets_BxL, probs_BxLxV.shape[-1], dtype=probs_BxLxV.dtype)
  return (probs_BxLxV - onehot_BxLxV) * g_BxL[..., None], None


_cpu_cross_entropy.defvjp(_forward, _backward)


def token_sums(xent_BxL: jax.Array, targets_BxL: jax.Array, lang_ids_BxL: jax.Array,
               num_langs: int, counts_BxL: jax.Array | None = None) -> dict[str, jax.Array]:
  """Summed token losses and counts, overall and per language [G], over the positions whose
  target counts (`counts_BxL`, batch.target_mask; default: target not PAD_ID); sums add across
  batches and micro-batches."""
  if counts_BxL is None:
    counts_BxL = batch_lib.target_mask({'targets': targets_BxL})
  mask_BxL = counts_BxL.astype(jnp.float32)
  lang_BxLxG = jax.nn.one_hot(lang_ids_BxL, num_langs, dtype=jnp.float32) * mask_BxL[..., None]
  return {'loss_sum': jnp.sum(xent_BxL * mask_BxL), 'count': jnp.sum(mask_BxL),
          'lang_loss_sum': jnp.einsum('bl,blg->g', xent_BxL, lang_BxLxG),
          'lang_count': jnp.sum(lang_BxLxG, axis=(0, 1))}


def loss_sums(model, params, batch, num_langs: int,
              neuron_mask_NxF: jax.Array | None = None) -> dict[str, jax.Array]:
  """`token_sums` of the model's predictions on one batch."""
  logits_BxLxV = model_lib.forward(model, params, batch, neuron_mask_NxF=neuron_mask_NxF)
  return token_sums(cross_entropy(logits_BxLxV, batch['targets']), batch['targets'],
                    batch['lang_ids'], num_langs, batch_lib.target_mask(batch))


def scan_sum(fn, stacked):
  """The sum of fn(batch) (a pytree of arrays) over the leading axis of `stacked`, scanned inside
  one program: micro-batches of a train step, or the probes' fixed batches (many collective
  programs in flight at once can deadlock XLA:CPU's multi-device runtime)."""
  def body(total, batch):
    return jax.tree.map(jnp.add, total, fn(batch)), None
  zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype),
                       jax.eval_shape(fn, jax.tree.map(lambda x: x[0], stacked)))
  return jax.lax.scan(body, zeros, stacked)[0]
