"""Causal, segment-masked dot-product attention with a choice of implementation.

'xla' and 'cudnn' use `jax.nn.dot_product_attention`. 'cudnn' is cuDNN's fused flash attention
(GPUs, 16-bit inputs): it skips the masked upper triangle and never writes the [L, L] scores; the
packed-document mask reaches it as an additive [B, 1, L, L] bias (exact: a query always sees
itself, so no row is fully masked). 'xla' materialises the float32 scores. 'chunked' splits
queries into blocks that only look at keys up to their own block, skipping the masked upper
triangle: on CPUs, where attention is bound by the softmax, this halves the work.
'auto' picks 'chunked' on CPU, 'cudnn' on a GPU when the inputs are 16-bit and cuDNN compiles
this shape (checked once per shape, else 'xla' with a warning), and 'xla' elsewhere.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax.errors import ConfigError

from babel_jax.model import backend

_NEG = -1e30
IMPLEMENTATIONS = ('auto', 'xla', 'cudnn', 'chunked')


def _barrier_t(x_BxHxXxY):
  """Transposes the last two axes of a matmul result without letting XLA fold the transpose
  back into the matmul (which would make it read its big operand transposed, a slow path)."""
  return jnp.swapaxes(jax.lax.optimization_barrier(x_BxHxXxY), -1, -2)


@jax.custom_vjp
def _scores(q_BxHxQxK, k_BxHxSxK):
  return jnp.einsum('bhqk,bhsk->bhqs', q_BxHxQxK, k_BxHxSxK, preferred_element_type=jnp.float32)


def _scores_fwd(q, k):
  return _scores(q, k), (q, k)


def _scores_bwd(res, g_BxHxQxS):
  q, k = res
  g = g_BxHxQxS.astype(q.dtype)
  dq = jnp.einsum('bhqs,bhsk->bhqk', g, k)
  dk = _barrier_t(jnp.einsum('bhkq,bhqs->bhks', jnp.swapaxes(q, -1, -2), g))
  return dq, dk.astype(k.dtype)


_scores.defvjp(_scores_fwd, _scores_bwd)


@jax.custom_vjp
def _weighted(p_BxHxQxS, v_BxHxSxK):
  return jnp.einsum('bhqs,bhsk->bhqk', p_BxHxQxS, v_BxHxSxK, preferred_element_type=jnp.float32)


def _weighted_fwd(p, v):
  return _weighted(p, v), (p, v)


def _weighted_bwd(res, g_BxHxQxK):
  p, v = res
  g = g_BxHxQxK.astype(v.dtype)
  dp = jnp.einsum('bhqk,bhsk->bhqs', g, v)
  dv = _barrier_t(jnp.einsum('bhkq,bhqs->bhks', jnp.swapaxes(g, -1, -2), p))
  return dp.astype(p.dtype), dv.astype(v.dtype)


_weighted.defvjp(_weighted_fwd, _weighted_bwd)


def _chunked(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, chunk: int):
  length, head_dim = q_BxLxHxK.shape[1], q_BxLxHxK.shape[-1]
  to_bhlk = lambda x: jnp.swapaxes(x, 1, 2)
  q_BxHxLxK = to_bhlk(q_BxLxHxK * head_dim ** -0.5)
  k_BxHxLxK, v_BxHxLxK = to_bhlk(k_BxLxHxK), to_bhlk(v_BxLxHxK)
  pos_L = jnp.arange(length)
  outs = []
  for start in range(0, length, chunk):
    end = min(start + chunk, length)  # this block of queries sees keys [0, end).
    s_BxHxQxS = _scores(q_BxHxLxK[:, :, start:end], k_BxHxLxK[:, :, :end])
    mask_BxQxS = ((segment_ids_BxL[:, start:end, None] == segment_ids_BxL[:, None, :end])
                  & (pos_L[None, start:end, None] >= pos_L[None, None, :end]))
    s_BxHxQxS = jnp.where(mask_BxQxS[:, None], s_BxHxQxS, _NEG)
    # Softmax with the normalisation applied after the value product: fewer passes over S.
    p_BxHxQxS = jnp.exp(s_BxHxQxS - jax.lax.stop_gradient(s_BxHxQxS.max(-1, keepdims=True)))
    o_BxHxQxK = _weighted(p_BxHxQxS.astype(v_BxLxHxK.dtype), v_BxHxLxK[:, :, :end])
    outs.append((o_BxHxQxK / p_BxHxQxS.sum(-1, keepdims=True)).astype(q_BxLxHxK.dtype))
  return to_bhlk(jnp.concatenate(outs, axis=2))


def _cudnn_problem(dtype, head_dim: int) -> str | None:
  """Why cuDNN flash attention cannot take these inputs, or None."""
  if backend.platform() != 'gpu':
    return f'it needs a GPU (this backend is {backend.platform()!r})'
  if np.dtype(dtype) not in (np.dtype(jnp.bfloat16), np.dtype(jnp.float16)):
    return f'it runs on 16-bit inputs, got {np.dtype(dtype).name} (set model.dtype=bfloat16)'
  if head_dim % 8 or head_dim > 128:
    return f'head dim {head_dim} must be a multiple of 8 and at most 128'
  return None


@functools.lru_cache(maxsize=None)
def _cudnn_compiles(dtype_name: str, length: int, heads: int, head_dim: int) -> str | None:
  """Compiles the forward and backward pass once on one sequence of this shape; the error text
  if cuDNN refuses it (an old cuDNN, an unsupported shape), else None."""
  shape = jax.ShapeDtypeStruct((1, length, heads, head_dim), jnp.dtype(dtype_name))
  seg = jax.ShapeDtypeStruct((1, length), jnp.int32)
  loss = lambda q, k, v, s: _library(q, k, v, s, 'cudnn').astype(jnp.float32).sum()
  try:
    jax.jit(jax.grad(loss, (0, 1, 2))).lower(shape, shape, shape, seg).compile()
  except Exception as e:  # pylint: disable=broad-except
    return f'{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}'
  return None


def resolve(impl: str, dtype, length: int, heads: int, head_dim: int) -> str:
  """The implementation `impl` stands for on this backend and for these inputs."""
  if impl not in IMPLEMENTATIONS:
    raise ValueError(f'attention implementation {impl!r} is not one of {IMPLEMENTATIONS}')
  if impl == 'cudnn':
    problem = _cudnn_problem(dtype, head_dim)
    if problem:
      raise ConfigError(f"model.attention_impl='cudnn' cannot run here: {problem}; use 'auto'")
  if impl != 'auto':
    return impl
  if backend.platform() == 'cpu':
    return 'chunked'
  if backend.platform() == 'gpu' and _cudnn_problem(dtype, head_dim) is None:
    failure = _cudnn_compiles(np.dtype(dtype).name, length, heads, head_dim)
    if failure is None:
      return 'cudnn'
    logging.warning('attention: cuDNN flash attention does not compile for [%d, %d, %d] %s '
                    "(%s); using 'xla'", length, heads, head_dim, np.dtype(dtype).name, failure)
  return 'xla'


def _library(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, impl: str):
  same_BxLxL = segment_ids_BxL[:, :, None] == segment_ids_BxL[:, None, :]
  return jax.nn.dot_product_attention(
      q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, mask=same_BxLxL[:, None], is_causal=True,
      implementation=impl)


def attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, impl: str = 'auto',
              chunk: int = 128):
  """softmax(q k^T / sqrt(K)) v over keys that are at or before the query and in its segment."""
  _, length, heads, head_dim = q_BxLxHxK.shape
  impl = resolve(impl, q_BxLxHxK.dtype, length, heads, head_dim)
  if impl == 'chunked':
    return _chunked(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, chunk)
  return _library(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL, impl)


def cached_attention(q_BxTxHxK, k_cache_BxSxHxK, v_cache_BxSxHxK, seg_cache_BxS, seg_BxT,
                     start: jax.Array):
  """Attention of T new queries (cache slots start .. start+T-1) over the key-value cache:
  keys in earlier or the same slots, in the same (non-zero) segment. Used for sampling."""
  t, s = q_BxTxHxK.shape[1], k_cache_BxSxHxK.shape[1]
  scores = jnp.einsum('bthk,bshk->bhts', q_BxTxHxK * q_BxTxHxK.shape[-1] ** -0.5,
                      k_cache_BxSxHxK, preferred_element_type=jnp.float32)
  slot_T, slot_S = start + jnp.arange(t), jnp.arange(s)
  mask_BxTxS = ((slot_S[None, None, :] <= slot_T[None, :, None])
                & (seg_cache_BxS[:, None, :] == seg_BxT[:, :, None])
                & (seg_BxT[:, :, None] > 0))
  scores = jnp.where(mask_BxTxS[:, None], scores, _NEG)
  probs = jax.nn.softmax(scores, axis=-1).astype(v_cache_BxSxHxK.dtype)
  return jnp.einsum('bhts,bshk->bthk', probs, v_cache_BxSxHxK).astype(q_BxTxHxK.dtype)
