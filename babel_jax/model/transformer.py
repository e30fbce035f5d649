"""A GPT-2 / Llama-style decoder as a pure Flax function of its parameter pytree.

Shape suffixes: B batch, L length, D d_model, H heads, K head dim, F MLP hidden, V vocab,
N layers. Every parameter and activation carries logical axis names (see
`runtime/sharding.RULES`). Blocks `sow` the residual stream after each layer and the MLP
activations after the nonlinearity (model/intermediates.py); when the caller does not ask for
that collection sow is a no-op, so the training path pays nothing for the probes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from babel_jax import config as config_lib
from babel_jax.model import attention as attention_lib
from babel_jax.model.intermediates import MLP_ACT, RESID
from babel_jax.model import backend

Array = jax.Array


# The architecture's hyperparameters are the config's model section itself (its fields, defaults
# and bounds are declared there); the model is built from `.resolved()` (d_ff filled in).
ModelConfig = config_lib.Model



def _init(cfg: ModelConfig, axes: tuple[str | None, ...], scale: float = 1.0):
  return nn.with_logical_partitioning(nn.initializers.normal(cfg.init_std * scale), axes)


def _zeros(axes):
  return nn.with_logical_partitioning(nn.initializers.zeros, axes)


def matmul(x_RxI: Array, w_IxO: Array) -> Array:
  """x @ w; on CPU its weight gradient is computed as (x^T g) in the layout XLA:CPU runs
  fastest, elsewhere autodiff's (see `backend.hand_written_backward`)."""
  if backend.hand_written_backward():
    return _cpu_matmul(x_RxI, w_IxO)
  return x_RxI @ w_IxO


@jax.custom_vjp
def _cpu_matmul(x_RxI: Array, w_IxO: Array) -> Array:
  return x_RxI @ w_IxO


def _matmul_fwd(x_RxI, w_IxO):
  return x_RxI @ w_IxO, (x_RxI, w_IxO)


def _matmul_bwd(res, g_RxO):
  x_RxI, w_IxO = res
  # The barrier keeps XLA from rewriting x^T g into a matmul that reads g transposed.
  dw_IxO = jax.lax.optimization_barrier(jnp.einsum('ni,no->io', x_RxI, g_RxO))
  return (g_RxO @ w_IxO.T).astype(x_RxI.dtype), dw_IxO.astype(w_IxO.dtype)


_cpu_matmul.defvjp(_matmul_fwd, _matmul_bwd)


class Dense(nn.Module):
  """Linear layer over the last `in_dims` axes with an arbitrary output shape and logical axes."""
  features: tuple[int, ...]
  axes: tuple[str | None, ...]
  cfg: ModelConfig
  in_dims: int = 1
  scale: float = 1.0

  @nn.compact
  def __call__(self, x: Array) -> Array:
    cfg = self.cfg
    in_shape = x.shape[-self.in_dims:]
    kernel = self.param('kernel', _init(cfg, self.axes, self.scale), (*in_shape, *self.features),
                        cfg.param_dtype)
    n_in, n_out = math.prod(in_shape), math.prod(self.features)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=cfg.dtype)
    lead = x.shape[:-self.in_dims]
    y = matmul(x.reshape(-1, n_in), kernel.reshape(n_in, n_out)).reshape(*lead, *self.features)
    if cfg.use_bias:
      bias = self.param('bias', _zeros(self.axes[self.in_dims:]), self.features, cfg.param_dtype)
      y = y + bias.astype(y.dtype).reshape((1,) * len(lead) + self.features)
    return y


class Norm(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxLxD: Array) -> Array:
    kw = dict(dtype=self.cfg.dtype, param_dtype=self.cfg.param_dtype, epsilon=self.cfg.norm_eps,
              scale_init=nn.with_logical_partitioning(nn.initializers.ones, ('embed',)))
    if self.cfg.norm == 'rmsnorm':
      return nn.RMSNorm(**kw)(x_BxLxD)
    return nn.LayerNorm(bias_init=_zeros(('embed',)), **kw)(x_BxLxD)


def rotary(x_BxLxHxK: Array, positions_BxL: Array, base: float, dims: int | None = None) -> Array:
  """Rotary position embedding (rotate-half form, as Llama and GPT-NeoX) on the first `dims`
  head dimensions of queries or keys (all by default); the rest pass through."""
  k = x_BxLxHxK.shape[-1] if dims is None else dims
  freq_K2 = base ** (-jnp.arange(0, k, 2, dtype=jnp.float32) / k)
  angle_BxLxK2 = positions_BxL[..., None].astype(jnp.float32) * freq_K2[None, None, :]
  sin, cos = jnp.sin(angle_BxLxK2)[:, :, None], jnp.cos(angle_BxLxK2)[:, :, None]
  x1, x2 = jnp.split(x_BxLxHxK[..., :k].astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return jnp.concatenate([out.astype(x_BxLxHxK.dtype), x_BxLxHxK[..., k:]], axis=-1)


class Attention(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxLxD: Array, positions_BxL: Array, segment_ids_BxL: Array) -> Array:
    cfg = self.cfg
    dense = functools.partial(Dense, axes=('embed', 'heads', 'kv'), cfg=cfg)
    q_BxLxHxK = dense((cfg.num_heads, cfg.head_dim), name='query')(x_BxLxD)
    # Grouped-query attention: G key/value heads, each shared by num_heads / G query heads.
    k_BxLxGxK = dense((cfg.kv_heads, cfg.head_dim), name='key')(x_BxLxD)
    v_BxLxGxK = dense((cfg.kv_heads, cfg.head_dim), name='value')(x_BxLxD)
    if cfg.positions == 'rotary':
      q_BxLxHxK = rotary(q_BxLxHxK, positions_BxL, cfg.rope_base, cfg.rotary_dim)
      k_BxLxGxK = rotary(k_BxLxGxK, positions_BxL, cfg.rope_base, cfg.rotary_dim)
    q_BxLxHxK = nn.with_logical_constraint(q_BxLxHxK, ('batch', 'length', 'act_heads', 'kv'))
    if self.is_mutable_collection('cache'):
      out_BxLxHxK = self._cached(q_BxLxHxK, k_BxLxGxK, v_BxLxGxK, segment_ids_BxL)
    else:
      k_BxLxHxK, v_BxLxHxK = _repeat_kv(k_BxLxGxK, cfg), _repeat_kv(v_BxLxGxK, cfg)
      # Packed documents must not see each other: same segment and causal.
      out_BxLxHxK = attention_lib.attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, segment_ids_BxL,
                                            cfg.attention_impl, cfg.attention_chunk)
    # Residual-branch projections get the GPT-2 1/sqrt(2N) init scale.
    out_scale = (2 * cfg.num_layers) ** -0.5
    return Dense((cfg.d_model,), ('heads', 'kv', 'embed'), cfg, in_dims=2, scale=out_scale,
                 name='out')(out_BxLxHxK)


  def _cached(self, q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, segment_ids_BxT):
    """Sampling: appends this call's keys and values to a max_len cache ('cache' collection,
    created on the first call) and attends over it."""
    b, t, h, k = k_BxTxHxK.shape
    size = (b, self.cfg.max_len, h, k)
    key = self.variable('cache', 'cached_key', jnp.zeros, size, k_BxTxHxK.dtype)
    value = self.variable('cache', 'cached_value', jnp.zeros, size, v_BxTxHxK.dtype)
    seg = self.variable('cache', 'cached_segment', jnp.zeros, (b, self.cfg.max_len), jnp.int32)
    index = self.variable('cache', 'cache_index', lambda: jnp.zeros((), jnp.int32))
    start = index.value
    key.value = jax.lax.dynamic_update_slice(key.value, k_BxTxHxK, (0, start, 0, 0))
    value.value = jax.lax.dynamic_update_slice(value.value, v_BxTxHxK, (0, start, 0, 0))
    seg.value = jax.lax.dynamic_update_slice(seg.value, segment_ids_BxT.astype(jnp.int32),
                                             (0, start))
    index.value = start + t
    return attention_lib.cached_attention(q_BxTxHxK, _repeat_kv(key.value, self.cfg),
                                          _repeat_kv(value.value, self.cfg), seg.value,
                                          segment_ids_BxT, start)


def _repeat_kv(x_BxLxGxK: Array, cfg: ModelConfig) -> Array:
  """Key/value head g serves query heads g*R .. g*R+R-1 (R = num_heads / G), as Llama's repeat_kv."""
  if cfg.kv_heads == cfg.num_heads:
    return x_BxLxGxK
  return jnp.repeat(x_BxLxGxK, cfg.num_heads // cfg.kv_heads, axis=2)


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxLxD: Array, neuron_mask_F: Array | None) -> Array:
    cfg = self.cfg
    up = functools.partial(Dense, (cfg.d_ff,), ('embed', 'mlp'), cfg)
    if cfg.mlp == 'swiglu':
      act_BxLxF = nn.silu(up(name='gate')(x_BxLxD))
      hidden_BxLxF = act_BxLxF * up(name='up')(x_BxLxD)
    else:  # 'gelu' is GPT-2's tanh approximation, 'gelu_exact' the erf form (GPT-NeoX, Pythia)
      act_BxLxF = nn.gelu(up(name='up')(x_BxLxD), approximate=cfg.mlp == 'gelu')
      hidden_BxLxF = act_BxLxF
    self.sow('intermediates', MLP_ACT, act_BxLxF)
    if neuron_mask_F is not None:
      hidden_BxLxF = hidden_BxLxF * neuron_mask_F.astype(hidden_BxLxF.dtype)[None, None, :]
    hidden_BxLxF = nn.with_logical_constraint(hidden_BxLxF, ('batch', 'length', 'act_mlp'))
    return Dense((cfg.d_model,), ('mlp', 'embed'), cfg, scale=(2 * cfg.num_layers) ** -0.5,
                 name='down')(hidden_BxLxF)


class Block(nn.Module):
  """Pre-norm transformer block; returns (x, None) so that it also works under nn.scan.

  Sequential (GPT-2, Llama): x + attn(norm(x)), then + mlp(norm(.)); parallel (GPT-NeoX):
  x + attn(norm_attn(x)) + mlp(norm_mlp(x)).
  """
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxLxD, positions_BxL, segment_ids_BxL, neuron_mask_F=None):
    attn_BxLxD = Attention(self.cfg, name='attn')(
        Norm(self.cfg, name='norm_attn')(x_BxLxD), positions_BxL, segment_ids_BxL)
    mlp = Mlp(self.cfg, name='mlp')
    if self.cfg.parallel_residual:
      x_BxLxD = x_BxLxD + attn_BxLxD + mlp(Norm(self.cfg, name='norm_mlp')(x_BxLxD), neuron_mask_F)
    else:
      x_BxLxD = x_BxLxD + attn_BxLxD
      x_BxLxD = x_BxLxD + mlp(Norm(self.cfg, name='norm_mlp')(x_BxLxD), neuron_mask_F)
    x_BxLxD = nn.with_logical_constraint(x_BxLxD, ('batch', 'length', 'act_embed'))
    self.sow('intermediates', RESID, x_BxLxD)
    return x_BxLxD, None


_REMAT_POLICIES = {
    'full': jax.checkpoint_policies.nothing_saveable,
    'dots': jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


@jax.custom_vjp
def tied_logits(x_BxLxD: Array, embedding_VxD: Array) -> Array:
  """x @ E^T for tied embeddings, accumulated and returned in float32 (free on GPUs and TPUs,
  and the loss sees unrounded logits under bfloat16 compute).

  The backward pass casts the cotangent back to the compute dtype, so both of its matmuls run in
  it (autodiff would multiply the float32 cotangent with the bfloat16 operands in float32). On
  CPU dE = (x^T g)^T transposes only the small [D, V] result instead of the [tokens, vocab]
  cotangent, a large saving there.
  """
  return jnp.einsum('bld,vd->blv', x_BxLxD, embedding_VxD, preferred_element_type=jnp.float32)


def _tied_fwd(x_BxLxD, embedding_VxD):
  return tied_logits(x_BxLxD, embedding_VxD), (x_BxLxD, embedding_VxD)


def _tied_bwd(res, g_BxLxV):
  x_BxLxD, embedding_VxD = res
  g_BxLxV = g_BxLxV.astype(x_BxLxD.dtype)
  dx_BxLxD = jnp.einsum('blv,vd->bld', g_BxLxV, embedding_VxD)
  if not backend.hand_written_backward():
    demb_VxD = jnp.einsum('blv,bld->vd', g_BxLxV, x_BxLxD)
    return dx_BxLxD.astype(x_BxLxD.dtype), demb_VxD.astype(embedding_VxD.dtype)
  # The barrier stops XLA from folding the transpose back into the matmul (which would then
  # read the big cotangent transposed, on a slow path).
  demb_DxV = jax.lax.optimization_barrier(jnp.einsum('bld,blv->dv', x_BxLxD, g_BxLxV))
  return dx_BxLxD.astype(x_BxLxD.dtype), demb_DxV.T.astype(embedding_VxD.dtype)


tied_logits.defvjp(_tied_fwd, _tied_bwd)


class Transformer(nn.Module):
  """Decoder-only LM: tokens [B, L] -> logits [B, L, V] (float32)."""
  cfg: ModelConfig

  def setup(self):
    cfg = self.cfg
    self.embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=cfg.dtype,
                          param_dtype=cfg.param_dtype,
                          embedding_init=_init(cfg, ('vocab', 'embed')))
    if cfg.positions == 'learned':
      self.pos_embed = nn.Embed(cfg.max_len, cfg.d_model, dtype=cfg.dtype,
                                param_dtype=cfg.param_dtype,
                                embedding_init=_init(cfg, (None, 'embed')))
    block = Block
    if cfg.remat != 'none':
      block = nn.remat(block, policy=_REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan_layers)
    if cfg.scan_layers:
      self.layers = nn.scan(
          block, variable_axes={'params': 0, 'intermediates': 0, 'cache': 0},
          split_rngs={'params': True}, in_axes=(nn.broadcast, nn.broadcast, 0),
          length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: 'layers'})(cfg, name='layers')
    else:
      self.layers = [block(cfg, name=f'layer_{i}') for i in range(cfg.num_layers)]
    self.final_norm = Norm(cfg)
    if not cfg.tie_embeddings:
      self.unembed = Dense((cfg.vocab_size,), ('embed', 'vocab'),
                           dataclasses.replace(cfg, use_bias=False))

  def __call__(self, tokens_BxL: Array, positions_BxL: Array, segment_ids_BxL: Array,
               neuron_mask_NxF: Array | None = None) -> Array:
    """Logits for every position; `neuron_mask_NxF` (1 keeps, 0 zeroes) gates MLP neurons."""
    x_BxLxD = self.embed(tokens_BxL)
    if self.cfg.positions == 'learned':
      x_BxLxD = x_BxLxD + self.pos_embed(positions_BxL)
    x_BxLxD = nn.with_logical_constraint(x_BxLxD, ('batch', 'length', 'act_embed'))
    if self.cfg.scan_layers:
      mask = neuron_mask_NxF
      if mask is None:
        mask = jnp.ones((self.cfg.num_layers, self.cfg.d_ff), jnp.float32)
      x_BxLxD, _ = self.layers(x_BxLxD, positions_BxL, segment_ids_BxL, mask)
    else:
      for i, layer in enumerate(self.layers):
        mask_F = None if neuron_mask_NxF is None else neuron_mask_NxF[i]
        x_BxLxD, _ = layer(x_BxLxD, positions_BxL, segment_ids_BxL, mask_F)
    return self.decode(x_BxLxD)

  def decode(self, x_BxLxD: Array) -> Array:
    """Final norm then unembedding: the model's head, also the logit lens on any layer."""
    x_BxLxD = self.final_norm(x_BxLxD)
    if self.cfg.tie_embeddings:
      x_BxLxD, embedding_VxD = nn.dtypes.promote_dtype(x_BxLxD, self.embed.embedding,
                                                       dtype=self.cfg.dtype)
      logits = tied_logits(x_BxLxD, embedding_VxD)
    else:
      logits = self.unembed(x_BxLxD)
    logits = nn.with_logical_constraint(logits, ('batch', 'length', 'act_vocab'))
    return logits.astype(jnp.float32)


def param_count(params: Any) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Training FLOPs per token (forward + backward = 3x forward), PaLM-style accounting.

  6 x matmul parameters (embedding lookup excluded, unembedding included) plus 12 x N x D x L
  for the attention score and value products. Remat recomputation is not counted (MFU, not HFU).
  """
  d, f, n = cfg.d_model, cfg.d_ff, cfg.num_layers
  mlp = (3 if cfg.mlp == 'swiglu' else 2) * d * f
  per_layer = 2 * d * d + 2 * d * cfg.kv_heads * cfg.head_dim + mlp
  matmul_params = n * per_layer + d * cfg.vocab_size
  return 6.0 * matmul_params + 12.0 * n * d * seq_len
