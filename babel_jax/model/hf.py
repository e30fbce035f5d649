"""Hugging Face GPT-2, GPT-NeoX and Llama checkpoints <-> this model's config and parameters.

A Hugging Face model directory holds config.json and safetensors weights (one file, or shards
named by model.safetensors.index.json). `read_dir` turns one into (model fields, parameter
pytree); `write_dir` writes the reverse, which transformers loads. The mappings below are the
whole correspondence, family by family; shapes follow this model's axes (D model width, H query
heads, G key/value heads, K head size, F MLP width, V vocabulary).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.flax

from babel_jax import config as config_lib
from babel_jax.errors import ConfigError

FAMILIES = {'gpt2': 'GPT2LMHeadModel', 'gpt_neox': 'GPTNeoXForCausalLM',
            'llama': 'LlamaForCausalLM'}
INDEX = 'model.safetensors.index.json'
Params = dict[str, Any]


# Config ----------------------------------------------------------------------------------------
def _rope(hf: dict[str, Any]) -> tuple[float, float]:
  """(base, rotated share of each head) from either config form (transformers v4 or v5)."""
  rope = hf.get('rope_parameters') or {}
  if (hf.get('rope_scaling') or {}).get('rope_type', 'default') != 'default' or \
      rope.get('rope_type', 'default') != 'default':
    raise ConfigError(f'config.json: rope scaling {hf.get("rope_scaling") or rope} is not '
                      'supported (only the default rotary)')
  base = rope.get('rope_theta', hf.get('rope_theta', hf.get('rotary_emb_base', 10000.0)))
  share = rope.get('partial_rotary_factor', hf.get('rotary_pct', 1.0))
  return float(base), float(share)


def model_fields(hf: dict[str, Any], where: str = 'config.json') -> dict[str, Any]:
  """This model's `model.*` config fields for a Hugging Face config.json (one line if not)."""
  kind = hf.get('model_type')
  if kind not in FAMILIES:
    raise ConfigError(f'{where}: model_type {kind!r} is not supported; supported: '
                      f'{", ".join(f"{k} ({v})" for k, v in FAMILIES.items())}')
  if kind == 'gpt2':
    act = hf.get('activation_function', 'gelu_new')
    if act not in ('gelu_new', 'gelu_pytorch_tanh'):
      raise ConfigError(f'{where}: activation_function {act!r} is not supported (gelu_new)')
    return dict(vocab_size=hf['vocab_size'], d_model=hf['n_embd'], num_layers=hf['n_layer'],
                num_heads=hf['n_head'], d_ff=hf.get('n_inner') or 4 * hf['n_embd'],
                max_len=hf['n_positions'], norm='layernorm', positions='learned', mlp='gelu',
                use_bias=True, tie_embeddings=True, norm_eps=hf.get('layer_norm_epsilon', 1e-5),
                num_kv_heads=0, rotary_fraction=1.0, parallel_residual=False)
  d, heads = hf['hidden_size'], hf['num_attention_heads']
  if hf.get('head_dim', d // heads) != d // heads:
    raise ConfigError(f'{where}: head_dim {hf["head_dim"]} != hidden_size / num_attention_heads '
                      f'({d // heads}) is not supported')
  base, share = _rope(hf)
  common = dict(vocab_size=hf['vocab_size'], d_model=d, num_layers=hf['num_hidden_layers'],
                num_heads=heads, d_ff=hf['intermediate_size'],
                max_len=hf['max_position_embeddings'], positions='rotary', rope_base=base,
                rotary_fraction=share, tie_embeddings=bool(hf.get('tie_word_embeddings', False)))
  if kind == 'gpt_neox':
    act = hf.get('hidden_act', 'gelu')
    if act not in ('gelu', 'gelu_new'):
      raise ConfigError(f'{where}: hidden_act {act!r} is not supported (gelu, gelu_new)')
    if not hf.get('attention_bias', True):
      raise ConfigError(f'{where}: GPT-NeoX without attention biases is not supported')
    return dict(common, norm='layernorm', mlp='gelu_exact' if act == 'gelu' else 'gelu',
                use_bias=True, norm_eps=hf.get('layer_norm_eps', 1e-5), num_kv_heads=0,
                parallel_residual=bool(hf.get('use_parallel_residual', True)))
  if hf.get('hidden_act', 'silu') != 'silu' or hf.get('attention_bias') or hf.get('mlp_bias'):
    raise ConfigError(f'{where}: Llama with hidden_act {hf.get("hidden_act")!r}, attention_bias '
                      f'or mlp_bias is not supported (silu, no biases)')
  return dict(common, norm='rmsnorm', mlp='swiglu', use_bias=False,
              norm_eps=hf.get('rms_norm_eps', 1e-6),
              num_kv_heads=hf.get('num_key_value_heads') or heads, parallel_residual=False)


def family_of(m) -> str:
  """The Hugging Face family that represents these model fields (a config's `model` section)."""
  if m.positions == 'learned' and m.norm == 'layernorm' and m.mlp == 'gelu' and m.use_bias \
      and m.tie_embeddings and not m.parallel_residual and m.kv_heads == m.num_heads:
    return 'gpt2'
  if m.positions == 'rotary' and m.norm == 'layernorm' and m.mlp in ('gelu', 'gelu_exact') \
      and m.use_bias and m.kv_heads == m.num_heads:
    return 'gpt_neox'
  if m.positions == 'rotary' and m.norm == 'rmsnorm' and m.mlp == 'swiglu' and not m.use_bias \
      and not m.parallel_residual:
    return 'llama'
  raise ConfigError('model: no Hugging Face family (gpt2, gpt_neox, llama) has this architecture '
                    f'(norm {m.norm}, positions {m.positions}, mlp {m.mlp}, use_bias '
                    f'{m.use_bias}, parallel_residual {m.parallel_residual})')


def hf_config(m, family: str) -> dict[str, Any]:
  """config.json for these model fields (`m`: the config's model section, resolved) in a family."""
  if family == 'gpt2':
    return dict(architectures=[FAMILIES[family]], model_type='gpt2', vocab_size=m.vocab_size,
                n_embd=m.d_model, n_layer=m.num_layers, n_head=m.num_heads, n_inner=m.d_ff,
                n_positions=m.max_len, activation_function='gelu_new',
                layer_norm_epsilon=m.norm_eps, tie_word_embeddings=True, resid_pdrop=0.0,
                embd_pdrop=0.0, attn_pdrop=0.0)
  common = dict(architectures=[FAMILIES[family]], model_type=family, vocab_size=m.vocab_size,
                hidden_size=m.d_model, num_hidden_layers=m.num_layers,
                num_attention_heads=m.num_heads, intermediate_size=m.d_ff,
                max_position_embeddings=m.max_len, tie_word_embeddings=m.tie_embeddings)
  if family == 'gpt_neox':
    return dict(common, hidden_act='gelu' if m.mlp == 'gelu_exact' else 'gelu_new',
                rotary_pct=m.rotary_fraction, rotary_emb_base=m.rope_base,
                rope_parameters=dict(rope_type='default', rope_theta=m.rope_base,
                                     partial_rotary_factor=m.rotary_fraction),
                layer_norm_eps=m.norm_eps, use_parallel_residual=m.parallel_residual,
                attention_bias=True, hidden_dropout=0.0, attention_dropout=0.0)
  if m.rotary_fraction != 1.0:
    raise ConfigError('model.rotary_fraction < 1 has no Llama form')
  return dict(common, hidden_act='silu', rms_norm_eps=m.norm_eps, rope_theta=m.rope_base,
              rope_parameters=dict(rope_type='default', rope_theta=m.rope_base),
              num_key_value_heads=m.kv_heads, head_dim=m.head_dim, attention_bias=False,
              mlp_bias=False)


def _view(fields: dict[str, Any]):
  """The fields as the config's model section (kv_heads, head_dim), for the mappings."""
  return config_lib.Model(**fields)


# Weights ---------------------------------------------------------------------------------------
def _norm(m, get: Callable[[str], np.ndarray], prefix: str) -> Params:
  if m.norm == 'rmsnorm':
    return {'RMSNorm_0': {'scale': get(prefix + '.weight')}}
  return {'LayerNorm_0': {'scale': get(prefix + '.weight'), 'bias': get(prefix + '.bias')}}


def _dense(kernel, bias=None) -> Params:
  return {'kernel': kernel} if bias is None else {'kernel': kernel, 'bias': bias}


def _layer_gpt2(m, get, i: int) -> Params:
  d, h, k = m.d_model, m.num_heads, m.head_dim
  p = f'transformer.h.{i}.'
  w_Dx3D, b_3D = get(p + 'attn.c_attn.weight'), get(p + 'attn.c_attn.bias')  # Conv1D: [in, out]
  qkv = [_dense(w.reshape(d, h, k), b.reshape(h, k))
         for w, b in zip(np.split(w_Dx3D, 3, axis=1), np.split(b_3D, 3))]
  return {'norm_attn': _norm(m, get, p + 'ln_1'), 'norm_mlp': _norm(m, get, p + 'ln_2'),
          'attn': dict(zip(('query', 'key', 'value'), qkv),
                       out=_dense(get(p + 'attn.c_proj.weight').reshape(h, k, d),
                                  get(p + 'attn.c_proj.bias'))),
          'mlp': {'up': _dense(get(p + 'mlp.c_fc.weight'), get(p + 'mlp.c_fc.bias')),
                  'down': _dense(get(p + 'mlp.c_proj.weight'), get(p + 'mlp.c_proj.bias'))}}


def _layer_neox(m, get, i: int) -> Params:
  d, h, k = m.d_model, m.num_heads, m.head_dim
  p = f'gpt_neox.layers.{i}.'
  # query_key_value's output rows are laid out [H, 3, K]: each head's q, k and v together.
  w_Hx3xKxD = get(p + 'attention.query_key_value.weight').reshape(h, 3, k, d)
  b_Hx3xK = get(p + 'attention.query_key_value.bias').reshape(h, 3, k)
  qkv = [_dense(w_Hx3xKxD[:, j].transpose(2, 0, 1), b_Hx3xK[:, j]) for j in range(3)]
  return {'norm_attn': _norm(m, get, p + 'input_layernorm'),
          'norm_mlp': _norm(m, get, p + 'post_attention_layernorm'),
          'attn': dict(zip(('query', 'key', 'value'), qkv),
                       out=_dense(get(p + 'attention.dense.weight').T.reshape(h, k, d),
                                  get(p + 'attention.dense.bias'))),
          'mlp': {'up': _dense(get(p + 'mlp.dense_h_to_4h.weight').T,
                               get(p + 'mlp.dense_h_to_4h.bias')),
                  'down': _dense(get(p + 'mlp.dense_4h_to_h.weight').T,
                                 get(p + 'mlp.dense_4h_to_h.bias'))}}


def _layer_llama(m, get, i: int) -> Params:
  d, h, g, k = m.d_model, m.num_heads, m.kv_heads, m.head_dim
  p = f'model.layers.{i}.'
  proj = lambda name, heads: _dense(get(p + f'self_attn.{name}.weight').T.reshape(d, heads, k))
  return {'norm_attn': _norm(m, get, p + 'input_layernorm'),
          'norm_mlp': _norm(m, get, p + 'post_attention_layernorm'),
          'attn': {'query': proj('q_proj', h), 'key': proj('k_proj', g),
                   'value': proj('v_proj', g),
                   'out': _dense(get(p + 'self_attn.o_proj.weight').T.reshape(h, k, d))},
          'mlp': {name: _dense(get(p + f'mlp.{name}_proj.weight').T)
                  for name in ('gate', 'up', 'down')}}


_LAYER = {'gpt2': _layer_gpt2, 'gpt_neox': _layer_neox, 'llama': _layer_llama}
# (embedding, learned positions, final norm, unembedding) tensor names per family.
_OUTER = {'gpt2': ('transformer.wte.weight', 'transformer.wpe.weight', 'transformer.ln_f', None),
          'gpt_neox': ('gpt_neox.embed_in.weight', None, 'gpt_neox.final_layer_norm',
                       'embed_out.weight'),
          'llama': ('model.embed_tokens.weight', None, 'model.norm', 'lm_head.weight')}


def to_params(m, family: str, get: Callable[[str], np.ndarray]) -> Params:
  """This model's parameters (unscanned layers) from a family's tensors, read by name."""
  embed, pos, final, unembed = _OUTER[family]
  params = {'embed': {'embedding': get(embed)}, 'final_norm': _norm(m, get, final)}
  if pos:
    params['pos_embed'] = {'embedding': get(pos)[:m.max_len]}
  for i in range(m.num_layers):
    params[f'layer_{i}'] = _LAYER[family](m, get, i)
  if not m.tie_embeddings:
    params['unembed'] = {'kernel': get(unembed).T}
  return params


def _put_norm(m, out: dict, prefix: str, p: Params) -> None:
  inner = p['RMSNorm_0'] if m.norm == 'rmsnorm' else p['LayerNorm_0']
  out[prefix + '.weight'] = inner['scale']
  if m.norm != 'rmsnorm':
    out[prefix + '.bias'] = inner['bias']


def _from_layer_gpt2(m, out: dict, i: int, lp: Params) -> None:
  d, p, a = m.d_model, f'transformer.h.{i}.', lp['attn']
  qkv = [a[n] for n in ('query', 'key', 'value')]
  out[p + 'attn.c_attn.weight'] = np.concatenate([x['kernel'].reshape(d, d) for x in qkv], 1)
  out[p + 'attn.c_attn.bias'] = np.concatenate([x['bias'].reshape(d) for x in qkv])
  out[p + 'attn.c_proj.weight'] = a['out']['kernel'].reshape(d, d)
  out[p + 'attn.c_proj.bias'] = a['out']['bias']
  for name, ours in (('c_fc', 'up'), ('c_proj', 'down')):
    out[p + f'mlp.{name}.weight'] = lp['mlp'][ours]['kernel']
    out[p + f'mlp.{name}.bias'] = lp['mlp'][ours]['bias']
  _put_norm(m, out, p + 'ln_1', lp['norm_attn'])
  _put_norm(m, out, p + 'ln_2', lp['norm_mlp'])


def _from_layer_neox(m, out: dict, i: int, lp: Params) -> None:
  d, h, k, p, a = m.d_model, m.num_heads, m.head_dim, f'gpt_neox.layers.{i}.', lp['attn']
  qkv = [a[n] for n in ('query', 'key', 'value')]
  out[p + 'attention.query_key_value.weight'] = np.stack(
      [x['kernel'].transpose(1, 2, 0) for x in qkv], axis=1).reshape(3 * d, d)
  out[p + 'attention.query_key_value.bias'] = np.stack([x['bias'] for x in qkv], 1).reshape(-1)
  out[p + 'attention.dense.weight'] = a['out']['kernel'].reshape(h * k, d).T
  out[p + 'attention.dense.bias'] = a['out']['bias']
  for name, ours in (('dense_h_to_4h', 'up'), ('dense_4h_to_h', 'down')):
    out[p + f'mlp.{name}.weight'] = lp['mlp'][ours]['kernel'].T
    out[p + f'mlp.{name}.bias'] = lp['mlp'][ours]['bias']
  _put_norm(m, out, p + 'input_layernorm', lp['norm_attn'])
  _put_norm(m, out, p + 'post_attention_layernorm', lp['norm_mlp'])


def _from_layer_llama(m, out: dict, i: int, lp: Params) -> None:
  d, p, a = m.d_model, f'model.layers.{i}.', lp['attn']
  for name, ours in (('q_proj', 'query'), ('k_proj', 'key'), ('v_proj', 'value')):
    out[p + f'self_attn.{name}.weight'] = a[ours]['kernel'].reshape(d, -1).T
  out[p + 'self_attn.o_proj.weight'] = a['out']['kernel'].reshape(-1, d).T
  for name in ('gate', 'up', 'down'):
    out[p + f'mlp.{name}_proj.weight'] = lp['mlp'][name]['kernel'].T
  _put_norm(m, out, p + 'input_layernorm', lp['norm_attn'])
  _put_norm(m, out, p + 'post_attention_layernorm', lp['norm_mlp'])


_FROM_LAYER = {'gpt2': _from_layer_gpt2, 'gpt_neox': _from_layer_neox,
               'llama': _from_layer_llama}


def from_params(m, family: str, params: Params) -> dict[str, np.ndarray]:
  """A family's tensors, by name, from this model's (unscanned, host numpy) parameters."""
  embed, pos, final, unembed = _OUTER[family]
  out = {embed: params['embed']['embedding']}
  if pos:
    out[pos] = params['pos_embed']['embedding']
  for i in range(m.num_layers):
    _FROM_LAYER[family](m, out, i, params[f'layer_{i}'])
  _put_norm(m, out, final, params['final_norm'])
  if not m.tie_embeddings:
    out[unembed] = params['unembed']['kernel'].T
  return {name: np.ascontiguousarray(x) for name, x in out.items()}


def unscan(params: Params, num_layers: int) -> Params:
  """Scanned layers ('layers', stacked on axis 0) as layer_0 .. layer_{N-1}."""
  if 'layers' not in params:
    return params
  out = {k: v for k, v in params.items() if k != 'layers'}
  for i in range(num_layers):
    out[f'layer_{i}'] = _tree_map(lambda x, i=i: x[i], params['layers'])
  return out


def scan(params: Params, num_layers: int) -> Params:
  """layer_0 .. layer_{N-1} stacked into 'layers' (the layout of model.scan_layers)."""
  layers = [params[f'layer_{i}'] for i in range(num_layers)]
  out = {k: v for k, v in params.items() if not k.startswith('layer_')}
  out['layers'] = _tree_map(lambda *xs: np.stack(xs), *layers)
  return out


def _tree_map(fn, *trees):
  if isinstance(trees[0], dict):
    return {k: _tree_map(fn, *(t[k] for t in trees)) for k in trees[0]}
  return fn(*trees)


# Directories -----------------------------------------------------------------------------------
# Buffers some checkpoints carry beside their weights (causal masks, rotary tables).
_BUFFERS = ('.attn.bias', '.attn.masked_bias', '.attention.bias', '.attention.masked_bias',
            '.rotary_emb.inv_freq')


def weight_files(path: str) -> list[str]:
  """The safetensors files of a model directory: the index's shards, or model.safetensors."""
  index = os.path.join(path, INDEX)
  if os.path.isfile(index):
    with open(index) as f:
      shards = sorted(set(json.load(f)['weight_map'].values()))
    missing = [s for s in shards if not os.path.isfile(os.path.join(path, s))]
    if missing:
      raise ConfigError(f'{index}: shard {missing[0]} is missing ({len(missing)} of {len(shards)})')
    return [os.path.join(path, s) for s in shards]
  single = os.path.join(path, 'model.safetensors')
  if os.path.isfile(single):
    return [single]
  raise ConfigError(f'{path}: no model.safetensors or {INDEX} (weights in pytorch_model.bin '
                    'are not read: save them as safetensors)')


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def read_config(path: str) -> dict[str, Any]:
  where = os.path.join(path, 'config.json')
  try:
    with open(where) as f:
      return json.load(f)
  except FileNotFoundError:
    raise ConfigError(f'{path}: no config.json (expected a Hugging Face model directory)') from None
  except json.JSONDecodeError as e:
    raise ConfigError(f'{where}: not JSON ({e})') from None


def read_dir(path: str) -> tuple[dict[str, Any], Params, dict[str, Any]]:
  """(model fields, float32 parameters with unscanned layers, provenance) of a model directory.

  Provenance: the family, the source dtype and each file's sha256. Every tensor must be used
  (buffers aside) and none may be missing: a mismatched file is an error, not a partial load.
  """
  hf = read_config(path)
  fields = model_fields(hf, os.path.join(path, 'config.json'))
  family = hf['model_type']
  files = weight_files(path)
  with contextlib.ExitStack() as stack:  # the files stay open (memory-mapped) while read
    handles = [stack.enter_context(safetensors.safe_open(f, framework='flax')) for f in files]
    params, dtypes, unused = _read_weights(path, fields, family, handles)
  if unused:
    raise ConfigError(f'{path}: {len(unused)} tensors not used by {family}, e.g. {unused[0]!r} '
                      '(does config.json describe these weights?)')
  info = {'family': family, 'dtype': ','.join(sorted(dtypes)),
          'files': {os.path.basename(f): sha256(f) for f in files}}
  return fields, params, info


def _read_weights(path: str, fields: dict[str, Any], family: str, handles
                  ) -> tuple[Params, set[str], list[str]]:
  """(float32 parameters, source dtypes, tensors no mapping read) from open safetensors files."""
  where = {name: h for h in handles for name in h.keys()}
  used, dtypes = set(), set()

  def get(name: str) -> np.ndarray:
    if name not in where:
      raise ConfigError(f'{path}: tensor {name!r} is missing ({family} with '
                        f'{fields["num_layers"]} layers expects it)')
    used.add(name)
    x = where[name].get_tensor(name)
    dtypes.add(str(x.dtype))
    return np.asarray(jax.device_get(x.astype(jnp.float32)))

  m = _view(fields)
  params = to_params(m, family, get)
  unused = [n for n in where if n not in used and not n.endswith(_BUFFERS)]
  if m.tie_embeddings and family != 'gpt2':
    unused = [n for n in unused if n != _OUTER[family][3]]
  return params, dtypes, unused


def write_dir(path: str, m, params: Params, family: str | None = None,
              tokenizer_json: str | None = None, dtype: str = 'float32') -> str:
  """A directory transformers loads: config.json, model.safetensors (and tokenizer.json).

  Written under a temporary name and renamed, so a crash leaves no half-written model.
  """
  family = family or family_of(m)
  tensors = from_params(m, family, unscan(params, m.num_layers))
  cfg = dict(hf_config(m, family), dtype=dtype, torch_dtype=dtype)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
  try:
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
      json.dump(cfg, f, indent=2)
    safetensors.flax.save_file({k: jnp.asarray(v, dtype) for k, v in tensors.items()},
                               os.path.join(tmp, 'model.safetensors'), metadata={'format': 'pt'})
    if tokenizer_json:
      shutil.copyfile(tokenizer_json, os.path.join(tmp, 'tokenizer.json'))
    if os.path.exists(path):
      shutil.rmtree(path)
    os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return path
