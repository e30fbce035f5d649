"""Probe 2: language-specific and language-transferring MLP neurons (LAPE, Tang et al. 2024).

`neuron_stats` runs inside the jitted forward pass: per batch it returns, per layer, neuron and
language, how many tokens activate the neuron (> 0 after the nonlinearity), and the per-language
loss sums, so one pass gives both the activation probabilities and the held-out loss. `lape` then
selects neurons from the accumulated probabilities, in numpy.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.probes.result import Neurons, NeuronSet
from babel_jax.train import losses


def neuron_stats(model, params: Any, batch: dict[str, jax.Array], neuron_mask_NxF: jax.Array,
                 num_langs: int) -> dict[str, jax.Array]:
  """Active-token counts [N, F, G] and per-language loss sums / token counts [G] (G languages)."""
  logits, inter = model_lib.forward(model, params, batch, intermediates=True,
                                    neuron_mask_NxF=neuron_mask_NxF)
  valid_BxL = batch['segment_ids'] > 0
  lang_BxLxG = jax.nn.one_hot(batch['lang_ids'], num_langs, dtype=jnp.float32)
  lang_BxLxG = lang_BxLxG * valid_BxL[..., None]
  # 0/1 operands are exact in the compute dtype (half the bytes of float32 under bfloat16, the
  # largest array of the pass); the counts accumulate in float32.
  dtype = inter.mlp_act_NxBxLxF.dtype
  active_NxBxLxF = (inter.mlp_act_NxBxLxF > 0).astype(dtype)
  active_NxFxG = jnp.einsum('nblf,blg->nfg', active_NxBxLxF, lang_BxLxG.astype(dtype),
                            preferred_element_type=jnp.float32)
  sums = losses.token_sums(losses.cross_entropy(logits, batch['targets']), batch['targets'],
                           batch['lang_ids'], num_langs, batch_lib.target_mask(batch))
  return {'active_NxFxG': active_NxFxG, 'tokens_G': lang_BxLxG.sum((0, 1)),
          'loss_sum_G': sums['lang_loss_sum'], 'loss_tokens_G': sums['lang_count']}


# LAPE's settings are the config's probe section: lape() reads its filter_rate, top_rate and
# activation_bar_ratio (their defaults, docs and bounds are declared there).
LapeSettings = config_lib.Probe


def lape(prob_NxFxG: np.ndarray, s: LapeSettings) -> dict[str, Any]:
  """Language-specific neurons from activation probabilities p[layer, neuron, language].

  Neurons whose probabilities are all at or below the `filter_rate` quantile (over all layers,
  neurons and languages) are dropped; of the rest, the `top_rate` share of all neurons with the
  lowest entropy of p normalised over languages is kept; each kept neuron belongs to every
  language whose p exceeds the `activation_bar_ratio` quantile. Returns the entropy [N, F] and
  the boolean membership [K, N, F].
  """
  p = np.asarray(prob_NxFxG, np.float64)
  n, f, k = p.shape
  total = p.sum(-1, keepdims=True)
  norm = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
  logs = np.log(np.where(norm > 0, norm, 1.0))
  entropy = -(norm * logs).sum(-1)
  flat = np.sort(p.ravel())
  filter_value = flat[max(round(flat.size * s.filter_rate) - 1, 0)]
  entropy = np.where((p > filter_value).any(-1), entropy, np.inf)
  keep = round(n * f * s.top_rate)
  order = np.argsort(entropy.ravel(), kind='stable')[:keep]
  order = order[np.isfinite(entropy.ravel()[order])]
  selected = np.zeros(n * f, bool)
  selected[order] = True
  selected = selected.reshape(n, f)
  bar = flat[max(round(flat.size * s.activation_bar_ratio) - 1, 0)]
  member_GxNxF = selected[None] & (np.moveaxis(p, -1, 0) > bar)
  return {'entropy_NxF': entropy, 'member_GxNxF': member_GxNxF, 'filter_value': float(filter_value),
          'activation_bar': float(bar)}


def summarise_neurons(member_GxNxF: np.ndarray, languages: list[str], primary: str) -> Neurons:
  """Counts per layer and index lists ([layer, neuron]) of specific and transferring neurons."""
  idx = {lang: i for i, lang in enumerate(languages)}
  as_set = lambda m_NxF: NeuronSet(tuple(m_NxF.sum(-1).tolist()), int(m_NxF.sum()),  # noqa: E731
                                   tuple(map(tuple, np.argwhere(m_NxF).tolist())))
  specific = {lang: as_set(member_GxNxF[i]) for lang, i in idx.items()}
  transferring = {lang: as_set(member_GxNxF[i] & member_GxNxF[idx[primary]])
                  for lang, i in idx.items() if lang != primary and primary in idx}
  return Neurons(specific, transferring)


def mask_without(member_NxF: np.ndarray) -> np.ndarray:
  """The neuron mask (1 keeps, 0 zeroes) that deactivates a neuron set."""
  return (~member_NxF).astype(np.float32)
