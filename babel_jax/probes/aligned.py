"""The aligned logit lens: the working language of planted languages, from their held-out text.

A planted language's every token stands for a known primary-language token (data/planted.py).
At every position of held-out planted text and at every layer, the lens (final norm and
unembedding of the residual stream) gives the probability of the correct next token's planted id
and of the primary id it stands for: thousands of positions, no hand-written prompt set. The
Python share p(primary) / (p(primary) + p(planted)) per layer plays the role the probe set's
share plays for real languages. Positions whose target is not moved (the shared anchors of the
partial clone) are left out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from babel_jax import model as model_lib
from babel_jax.model import Transformer


def aligned_stats(model: Transformer, params, batch: dict[str, jax.Array], inverse_V: jax.Array,
                  num_langs: int) -> dict[str, jax.Array]:
  """Per layer and language, sums over the positions whose target is a planted id:
  p(primary id), p(planted id), their share, and how often each is the top-1 token."""
  _, inter = model_lib.forward(model, params, batch, intermediates=True)
  resid_NxBxLxD = inter.resid_NxBxLxD
  n, b, length, d = resid_NxBxLxD.shape
  logits_NxBxLxV = model.apply({'params': params}, resid_NxBxLxD.reshape(n * b, length, d),
                               method=Transformer.decode).reshape(n, b, length, -1)
  planted_BxL = batch['targets']
  primary_BxL = inverse_V[planted_BxL]
  valid_BxL = (planted_BxL > 0) & (primary_BxL >= 0)
  primary_BxL = jnp.where(valid_BxL, primary_BxL, 0)
  logz_NxBxL = jax.nn.logsumexp(logits_NxBxLxV, axis=-1)
  take = lambda ids_BxL: jnp.take_along_axis(
      logits_NxBxLxV, jnp.broadcast_to(ids_BxL[None, ..., None], (n, b, length, 1)),
      axis=-1)[..., 0]
  p_planted = jnp.exp(take(planted_BxL) - logz_NxBxL)
  p_primary = jnp.exp(take(primary_BxL) - logz_NxBxL)
  top_NxBxL = jnp.argmax(logits_NxBxLxV, axis=-1)
  lang_BxLxK = jax.nn.one_hot(batch['lang_ids'], num_langs, dtype=jnp.float32)
  w_BxLxK = lang_BxLxK * valid_BxL[..., None].astype(jnp.float32)
  per_lang = lambda x_NxBxL: jnp.einsum('nbl,blk->nk', x_NxBxL.astype(jnp.float32), w_BxLxK)
  share = p_primary / jnp.maximum(p_primary + p_planted, 1e-30)
  return {'positions_K': w_BxLxK.sum((0, 1)),
          'primary_prob_NxK': per_lang(p_primary), 'planted_prob_NxK': per_lang(p_planted),
          'primary_share_NxK': per_lang(share),
          'primary_top1_NxK': per_lang(top_NxBxL == primary_BxL[None]),
          'planted_top1_NxK': per_lang(top_NxBxL == planted_BxL[None])}


def summarise(totals: dict, languages: list[str], planted: list[str]) -> dict:
  """Per planted language and layer: means over its positions (JSON-able lists)."""
  out = {}
  for lang in planted:
    k = languages.index(lang)
    count = float(totals['positions_K'][k])
    if count == 0:
      continue
    mean = lambda key: (totals[key][:, k] / count).tolist()  # noqa: E731
    out[lang] = {'positions': int(count), 'python_prob': mean('primary_prob_NxK'),
                 'target_prob': mean('planted_prob_NxK'),
                 'python_mass': mean('primary_share_NxK'),
                 'python_top1': mean('primary_top1_NxK'), 'target_top1': mean('planted_top1_NxK')}
  return out
