"""Probe 1, the working language: the logit lens at every layer on the probe-set prompts.

For each layer the residual stream at a prompt's last position goes through the final norm and
the unembedding (`Transformer.decode`); the decoded distribution favours the Python identifier if
its first token is the top-1 token, the L identifier if that one is, and neither otherwise. All
layers are decoded in one jitted pass over the [layers, prompts, D] slice of the stream.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import model as model_lib
from babel_jax.model import Transformer
from babel_jax.probes.result import LensReading


def lens_stats(model: Transformer, params: Any, batch: dict[str, jax.Array],
               last_P: jax.Array, target_P: jax.Array, primary_P: jax.Array) -> dict[str, jax.Array]:
  """Per layer and prompt: top-1 verdict (1 Python, 2 target, 0 neither) and both probabilities."""
  _, inter = model_lib.forward(model, params, batch, intermediates=True)
  resid_NxPxD = jnp.take_along_axis(inter.resid_NxBxLxD, last_P[None, :, None, None],
                                    axis=2)[:, :, 0]
  n, p, d = resid_NxPxD.shape
  logits = model.apply({'params': params}, resid_NxPxD.reshape(n * p, 1, d),
                       method=Transformer.decode).reshape(n, p, -1)
  logz_NxP = jax.nn.logsumexp(logits, axis=-1)
  top_NxP = jnp.argmax(logits, axis=-1)
  take = lambda ids: jnp.take_along_axis(logits, ids[None, :, None], axis=-1)[..., 0]
  p_primary, p_target = jnp.exp(take(primary_P) - logz_NxP), jnp.exp(take(target_P) - logz_NxP)
  verdict = jnp.where(top_NxP == primary_P[None], 1, jnp.where(top_NxP == target_P[None], 2, 0))
  return {'verdict_NxP': verdict, 'p_primary_NxP': p_primary, 'p_target_NxP': p_target}


def summarise_lens(out: dict[str, np.ndarray], languages: list[str]) -> dict[str, LensReading]:
  """Per language and layer: shares of primary / target / neither wins, mean probabilities."""
  langs = np.asarray(languages)
  result = {}
  for lang in sorted(set(languages)):
    sel = langs == lang
    v = out['verdict_NxP'][:, sel]
    mean = lambda x_NxP: tuple(x_NxP.mean(axis=1).tolist())  # noqa: E731
    result[lang] = LensReading(
        prompts=int(sel.sum()), primary_top1=mean(v == 1), target_top1=mean(v == 2),
        neither_top1=mean(v == 0), primary_prob=mean(out['p_primary_NxP'][:, sel]),
        target_prob=mean(out['p_target_NxP'][:, sel]))
  return result
