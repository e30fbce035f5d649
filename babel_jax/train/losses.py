"""Token cross-entropy, with a hand-written backward pass on CPU.

The generic autodiff of log-softmax recomputes exp(logits) in the backward pass; over a
[tokens, vocab] array that second pass costs as much as a matmul on CPUs. There the forward pass
keeps the softmax it already computed and the backward pass is one fused elementwise op. On GPUs
and TPUs the recomputation is one fused, memory-bound pass, cheaper than writing and re-reading
the kept softmax, so autodiff of the same formula is used (see `model.backend`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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
