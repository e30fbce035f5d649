"""Batched autoregressive sampling with a key-value cache: greedy or temperature / top-p.

Prompts are left-padded to a bucketed length (so shapes, and compilations, repeat), run through
the model once to fill the cache (prefill), then decoded `chunk` tokens per jitted call; between
calls the host checks stop conditions (stop sequences are text, so `stop_fn` sees decoded rows)
and ends early once every row is done. Works on sharded parameters: the jitted functions take
the parameter pytree as it is placed.

Decoding is bound by memory traffic, so two things keep it small: the cache holds only the slots
a call can fill (the padded prompt plus the new tokens, not `max_len`), since every step reads the
whole cache; and parameters are cast to the compute dtype once per call instead of in every step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax.data.batch import PAD_ID
from babel_jax.model import Transformer
from babel_jax.runtime import sharding


@dataclasses.dataclass(frozen=True)
class SampleSettings:
  max_new_tokens: int = 256
  temperature: float = 0.0  # 0 is greedy
  top_p: float = 1.0
  chunk: int = 32  # tokens decoded per jitted call between host-side stop checks
  bucket: int = 64  # prompt lengths are padded up to a multiple of this

  @property
  def steps(self) -> int:
    """Decode steps: max_new_tokens rounded up to whole chunks (each needs a cache slot)."""
    return -(-self.max_new_tokens // self.chunk) * self.chunk


def sample_token(logits_BxV: jax.Array, rng: jax.Array, temperature: jax.Array,
                 top_p: jax.Array) -> jax.Array:
  """Greedy when temperature == 0, else nucleus sampling over the smallest set of tokens whose
  probability reaches top_p (the most likely token is always kept)."""
  greedy = jnp.argmax(logits_BxV, axis=-1)
  scaled = logits_BxV / jnp.maximum(temperature, 1e-6)
  order = jnp.argsort(-scaled, axis=-1)
  sorted_logits = jnp.take_along_axis(scaled, order, axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above
  sorted_logits = jnp.where(before < top_p, sorted_logits, -jnp.inf)
  choice = jax.random.categorical(rng, sorted_logits, axis=-1)
  sampled = jnp.take_along_axis(order, choice[:, None], axis=-1)[:, 0]
  return jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)


class Sampler:
  """Compiled prefill and decode for one model; reuse it across checkpoints of that model."""

  def __init__(self, model: Transformer, eos_id: int, vocab_limit: int | None = None,
               zero_is_token: bool = False):
    self.model, self.eos_id = model, eos_id
    self.max_len = model.cfg.max_len
    vocab = model.cfg.vocab_size
    # Never emit padding (id 0 means 'no token', unless the tokenizer's id 0 is a token:
    # data/batch.py) or ids past the tokenizer's vocabulary.
    allowed = np.arange(vocab) < (vocab_limit or vocab)
    allowed[PAD_ID] = zero_is_token and bool(allowed[PAD_ID])
    self._bias = jnp.where(jnp.asarray(allowed), 0.0, -jnp.inf)
    self._prefill = jax.jit(self._prefill_fn, static_argnames='slots')
    self._decode = jax.jit(self._decode_fn, static_argnames='steps', donate_argnums=1)
    compute = jnp.dtype(model.cfg.dtype)
    self._cast = None
    if compute != jnp.dtype(model.cfg.param_dtype):  # e.g. float32 parameters, bfloat16 compute
      # Exactly the arrays the model itself casts to the compute dtype (matmul kernels and
      # embedding tables); norm scales and biases stay as they are, so the numbers are the same.
      cast = lambda path, x: x.astype(compute) if path[-1].key in ('kernel', 'embedding') else x
      self._cast = jax.jit(lambda p: jax.tree_util.tree_map_with_path(cast, p))

  def _apply(self, params, cache, tokens, positions, segments):
    variables = {'params': params} if cache is None else {'params': params, 'cache': cache}
    logits, state = sharding.with_rules(self.model.apply)(variables, tokens, positions, segments,
                                                          mutable=['cache'])
    return logits[:, -1] + self._bias, state['cache']

  def _empty_cache(self, params, tokens_BxL, positions_BxL, segments_BxL, slots: int):
    """A zero cache of `slots` positions, shaped like the one the model would create itself."""
    shapes = jax.eval_shape(
        lambda *args: self._apply(*args)[1], params, None, tokens_BxL, positions_BxL,
        segments_BxL)

    def resize(path, x):
      name = path[-1].key
      shape = list(x.shape)
      if name in ('cached_key', 'cached_value'):
        shape[-3] = slots
      elif name == 'cached_segment':
        shape[-1] = slots
      return jnp.zeros(shape, x.dtype)
    return jax.tree_util.tree_map_with_path(resize, shapes)

  def _prefill_fn(self, params, tokens_BxL, positions_BxL, segments_BxL, slots: int):
    cache = self._empty_cache(params, tokens_BxL, positions_BxL, segments_BxL, slots)
    return self._apply(params, cache, tokens_BxL, positions_BxL, segments_BxL)

  def _decode_fn(self, params, cache, logits_BxV, positions_B, done_B, rng, temperature, top_p,
                 steps: int):
    def body(carry, _):
      cache, logits, pos, done, rng = carry
      rng, sub = jax.random.split(rng)
      tok = jnp.where(done, PAD_ID, sample_token(logits, sub, temperature, top_p))
      ones = jnp.ones_like(tok)[:, None]
      logits, cache = self._apply(params, cache, tok[:, None], pos[:, None], ones)
      return (cache, logits, pos + 1, done | (tok == self.eos_id), rng), tok
    carry, toks_TxB = jax.lax.scan(body, (cache, logits_BxV, positions_B, done_B, rng), None,
                                   length=steps)
    return carry, toks_TxB.T

  def generate(self, params: Any, prompts: Sequence[Sequence[int]], settings: SampleSettings,
               rng: jax.Array, stop_fn: Callable[[list[int]], bool] | None = None
               ) -> list[list[int]]:
    """New tokens for every prompt (the EOS token and anything after it dropped)."""
    longest = max(map(len, prompts))
    padded = -(-longest // settings.bucket) * settings.bucket
    steps = settings.steps
    length = min(padded, self.max_len - steps)
    if longest > length:
      raise ValueError(f'a prompt of {longest} tokens plus {steps} new ones exceeds the '
                       f'model\'s max_len {self.max_len}')
    b = len(prompts)
    tokens = np.zeros((b, length), np.int32)
    segments = np.zeros((b, length), np.int32)
    positions = np.zeros((b, length), np.int32)
    for i, p in enumerate(prompts):
      tokens[i, length - len(p):] = p
      segments[i, length - len(p):] = 1
      positions[i, length - len(p):] = np.arange(len(p))
    if self._cast is not None:
      params = self._cast(params)
    logits, cache = self._prefill(params, tokens, positions, segments, slots=length + steps)
    pos = jnp.asarray([len(p) for p in prompts], jnp.int32)
    done = jnp.zeros((b,), bool)
    temperature = jnp.float32(settings.temperature)
    top_p = jnp.float32(settings.top_p)
    out: list[list[int]] = [[] for _ in prompts]
    finished = np.zeros(b, bool)
    for _ in range(steps // settings.chunk):
      rng, sub = jax.random.split(rng)
      (cache, logits, pos, done, _), toks = self._decode(
          params, cache, logits, pos, done, sub, temperature, top_p, steps=settings.chunk)
      toks = np.asarray(toks)
      for i in range(b):
        if finished[i]:
          continue
        row = toks[i].tolist()
        if self.eos_id in row:
          out[i] += row[:row.index(self.eos_id)]
          finished[i] = True
        else:
          out[i] += row
        if len(out[i]) >= settings.max_new_tokens:
          out[i] = out[i][:settings.max_new_tokens]
          finished[i] = True
        if not finished[i] and stop_fn is not None and stop_fn(out[i]):
          finished[i] = True
      if finished.all():
        break
      done = done | jnp.asarray(finished)
    return out
