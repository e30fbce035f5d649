"""Causal, segment-masked dot-product attention with a choice of implementation.

'xla' and 'cudnn' use `jax.nn.dot_product_attention` (cuDNN flash attention on GPUs). 'chunked'
splits queries into blocks that only look at keys up to their own block, skipping the masked
upper triangle: on CPUs, where attention is bound by the softmax, this halves the work.
'auto' picks 'chunked' on CPU and 'xla' elsewhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_NEG = -1e30


def _chunked(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, chunk: int):
  length, head_dim = q_BxLxHxK.shape[1], q_BxLxHxK.shape[-1]
  q_BxLxHxK = q_BxLxHxK * head_dim ** -0.5
  pos_L = jnp.arange(length)
  outs = []
  for start in range(0, length, chunk):
    end = min(start + chunk, length)  # this block of queries sees keys [0, end).
    s_BxHxQxS = jnp.einsum('bqhk,bshk->bhqs', q_BxLxHxK[:, start:end], k_BxLxHxK[:, :end],
                           preferred_element_type=jnp.float32)
    mask_BxQxS = ((segment_ids_BxL[:, start:end, None] == segment_ids_BxL[:, None, :end])
                  & (pos_L[start:end, None] >= pos_L[None, :end]))
    s_BxHxQxS = jnp.where(mask_BxQxS[:, None], s_BxHxQxS, _NEG)
    # Softmax with the normalisation applied after the value product: fewer passes over S.
    p_BxHxQxS = jnp.exp(s_BxHxQxS - jax.lax.stop_gradient(s_BxHxQxS.max(-1, keepdims=True)))
    o_BxQxHxK = jnp.einsum('bhqs,bshk->bqhk', p_BxHxQxS.astype(v_BxLxHxK.dtype),
                           v_BxLxHxK[:, :end], preferred_element_type=jnp.float32)
    denom_BxQxH = jnp.swapaxes(p_BxHxQxS.sum(-1), 1, 2)
    outs.append((o_BxQxHxK / denom_BxQxH[..., None]).astype(q_BxLxHxK.dtype))
  return jnp.concatenate(outs, axis=1)


def attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, impl: str = 'auto',
              chunk: int = 128):
  """softmax(q k^T / sqrt(K)) v over keys that are at or before the query and in its segment."""
  if impl == 'auto':
    impl = 'chunked' if jax.default_backend() == 'cpu' else 'xla'
  if impl == 'chunked':
    return _chunked(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, chunk)
  same_BxLxL = segment_ids_BxL[:, :, None] == segment_ids_BxL[:, None, :]
  return jax.nn.dot_product_attention(
      q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, mask=same_BxLxL[:, None], is_causal=True,
      implementation=None if impl == 'xla' else impl)
