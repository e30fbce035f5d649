"""The aligned logit lens: the working language of planted languages, from their held-out text.

A planted language's every token stands for a known primary-language token (data/planted.py),
and planted language k owns the id block [base * (k + 1), base * (k + 2)) beside the primary
block [0, base). At every position of held-out planted text whose target is a moved id, and at
every layer, the lens (final norm and unembedding of the residual stream) is read twice:
- within each block: q_primary, the probability of the mirrored primary id under the softmax
  restricted to the primary block, and q_planted, that of the planted id within its own block.
  q_primary / (q_primary + q_planted) is the working language (structure): which language's
  next token the layer has worked out, whatever block the unembedding favours;
- between blocks: m_primary and m_planted, each block's share of the whole distribution, and
  m_primary / (m_primary + m_planted), the block bias.
p(primary id) / (p(primary id) + p(planted id)) over the whole vocabulary mixes the two (p = m q):
training on any planted language pushes the whole primary block down, so that ratio fell alike for
the clone and the scrambled copy. The within-block share does not move with block bias.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.model import Transformer
from babel_jax.probes.result import AlignedReading


def id_blocks(planted: dict[str, tuple[Any, np.ndarray]], languages: list[str], vocab: int
              ) -> tuple[int, np.ndarray]:
  """(base, block_G): the real vocabulary size and each language's id block (planted language
  index k -> k + 1) from the planted specs {name: (Planted, id_map)}; 0 for a real language and
  for a planted one whose block the model's `vocab` does not hold (not measurable)."""
  bases = {len(m) for _, m in planted.values()}
  if len(bases) != 1:
    raise ValueError(f'planted id maps of different real vocabularies: {sorted(bases)}')
  base = bases.pop()
  block_G = np.zeros(len(languages), np.int32)
  for name, (p, _) in planted.items():
    if name in languages and base * (p.index + 2) <= vocab:
      block_G[languages.index(name)] = p.index + 1
  return base, block_G


def aligned_readings(logits_NxBxLxV: jax.Array, batch: dict[str, jax.Array],
                     inverse_V: jax.Array, block_G: jax.Array, base: int, num_blocks: int,
                     num_langs: int) -> dict[str, jax.Array]:
  """Per layer and language, sums over the positions whose target is a moved id in the
  language's block: within-block probabilities, shares and top-1s, block masses and shares, and
  the whole-vocabulary probabilities. `num_blocks` blocks of `base` ids are read."""
  n, b, length, _ = logits_NxBxLxV.shape
  blocks_NxBxLxAxU = logits_NxBxLxV[..., :num_blocks * base].reshape(
      n, b, length, num_blocks, base)
  lse_NxBxL = jax.nn.logsumexp(logits_NxBxLxV, axis=-1)
  lse_NxBxLxA = jax.nn.logsumexp(blocks_NxBxLxAxU, axis=-1)
  top_NxBxLxA = jnp.argmax(blocks_NxBxLxAxU, axis=-1)  # index within each block
  planted_BxL = batch['targets']
  lang_BxL = batch['lang_ids']
  block_BxL = jnp.where(lang_BxL >= 0, block_G[jnp.maximum(lang_BxL, 0)], 0)
  primary_BxL = inverse_V[planted_BxL]
  valid_BxL = ((planted_BxL > 0) & batch_lib.target_mask(batch) & (primary_BxL >= 0)
               & (block_BxL > 0) & (planted_BxL // base == block_BxL))
  primary_BxL = jnp.where(valid_BxL, primary_BxL, 0)
  block_BxL = jnp.where(valid_BxL, block_BxL, 0)
  at = lambda x_NxBxLxX, ids_BxL: jnp.take_along_axis(
      x_NxBxLxX, jnp.broadcast_to(ids_BxL[None, ..., None], (n, b, length, 1)), axis=-1)[..., 0]
  lse_primary, lse_planted = lse_NxBxLxA[..., 0], at(lse_NxBxLxA, block_BxL)
  logq_primary = at(logits_NxBxLxV, primary_BxL) - lse_primary
  logq_planted = at(logits_NxBxLxV, planted_BxL) - lse_planted
  lang_BxLxG = jax.nn.one_hot(lang_BxL, num_langs, dtype=jnp.float32)
  w_BxLxG = lang_BxLxG * valid_BxL[..., None].astype(jnp.float32)
  per_lang = lambda x_NxBxL: jnp.einsum('nbl,blg->ng', x_NxBxL.astype(jnp.float32), w_BxLxG)
  return {
      'positions_G': w_BxLxG.sum((0, 1)),
      'primary_within_NxG': per_lang(jnp.exp(logq_primary)),
      'target_within_NxG': per_lang(jnp.exp(logq_planted)),
      'within_share_NxG': per_lang(jax.nn.sigmoid(logq_primary - logq_planted)),
      'primary_top1_within_NxG': per_lang(top_NxBxLxA[..., 0] == primary_BxL[None]),
      'target_top1_within_NxG': per_lang(
          at(top_NxBxLxA, block_BxL) == (planted_BxL - block_BxL * base)[None]),
      'primary_block_mass_NxG': per_lang(jnp.exp(lse_primary - lse_NxBxL)),
      'target_block_mass_NxG': per_lang(jnp.exp(lse_planted - lse_NxBxL)),
      'primary_block_share_NxG': per_lang(jax.nn.sigmoid(lse_primary - lse_planted)),
      'primary_prob_NxG': per_lang(jnp.exp(logq_primary + lse_primary - lse_NxBxL)),
      'target_prob_NxG': per_lang(jnp.exp(logq_planted + lse_planted - lse_NxBxL)),
  }


def aligned_stats(model: Transformer, params, batch: dict[str, jax.Array], inverse_V: jax.Array,
                  block_G: jax.Array, base: int, num_blocks: int, num_langs: int
                  ) -> dict[str, jax.Array]:
  """`aligned_readings` of every layer's lens logits on one batch."""
  _, inter = model_lib.forward(model, params, batch, intermediates=True)
  resid_NxBxLxD = inter.resid_NxBxLxD
  n, b, length, d = resid_NxBxLxD.shape
  logits_NxBxLxV = model.apply({'params': params}, resid_NxBxLxD.reshape(n * b, length, d),
                               method=Transformer.decode).reshape(n, b, length, -1)
  return aligned_readings(logits_NxBxLxV, batch, inverse_V, block_G, base, num_blocks, num_langs)


def summarise_aligned(totals: dict, languages: list[str], planted: list[str]
              ) -> dict[str, AlignedReading]:
  """Per planted language of `planted` with positions: the means over its positions."""
  out = {}
  for lang in planted:
    k = languages.index(lang)
    count = float(totals['positions_G'][k])
    if count == 0:
      continue
    mean = lambda key: tuple((totals[key + '_NxG'][:, k] / count).tolist())  # noqa: E731
    out[lang] = AlignedReading(
        positions=int(count), primary_within=mean('primary_within'),
        target_within=mean('target_within'), within_share=mean('within_share'),
        primary_top1_within=mean('primary_top1_within'),
        target_top1_within=mean('target_top1_within'),
        primary_block_mass=mean('primary_block_mass'), target_block_mass=mean('target_block_mass'),
        primary_block_share=mean('primary_block_share'), primary_prob=mean('primary_prob'),
        target_prob=mean('target_prob'))
  return out
