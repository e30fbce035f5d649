"""Sampling with the key-value cache: same tokens as recomputing the full forward pass."""

from tests import testing  # noqa: F401  (first: fake devices)

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.evaluation import sampling
from babel_jax.runtime import factory

EOS = 3


def _model(**overrides):
  cfg = testing.config(model={'max_len': 128, **overrides}, **{'mesh.num_devices': 1})
  model = model_lib.build_model(cfg.model)
  params = nn.unbox(model_lib.init_boxed(model, jax.random.PRNGKey(1), 16))
  # Sharper distributions than at init, so greedy choices are not near-ties.
  params = jax.tree.map(lambda x: x * 3.0 if x.ndim > 1 else x, params)
  return cfg, model, params


def _greedy_reference(model, params, prompt, n, bias, width=32):
  """Greedy decoding by re-running the whole forward pass (right-padded to one shape)."""
  fwd = jax.jit(lambda p, b: model_lib.forward(model, p, b))
  toks = list(prompt)
  for _ in range(n):
    t = np.zeros((1, width), np.int32)
    t[0, :len(toks)] = toks
    seg = (np.arange(width) < len(toks)).astype(np.int32)[None]
    batch = {'tokens': t, 'positions': np.arange(width, dtype=np.int32)[None] * seg,
             'segment_ids': seg}
    logits = fwd(params, batch)[0, len(toks) - 1] + bias
    nxt = int(jnp.argmax(logits))
    if nxt == EOS:
      break
    toks.append(nxt)
  return toks[len(prompt):]


class SamplingTest(absltest.TestCase):

  def test_cached_greedy_matches_full_recompute(self):
    llama = {'positions': 'rotary', 'norm': 'rmsnorm', 'mlp': 'swiglu', 'use_bias': False}
    neox = {'positions': 'rotary', 'rotary_fraction': 0.25, 'parallel_residual': True,
            'mlp': 'gelu_exact', 'tie_embeddings': False}
    for overrides in ({}, {**llama, 'scan_layers': True},
                      {**llama, 'num_kv_heads': 2, 'tie_embeddings': False}, neox):
      _, model, params = _model(**overrides)
      sampler = sampling.Sampler(model, eos_id=EOS)
      prompts = [[5, 9, 17, 33], [7], [100, 101, 102, 103, 104, 105, 106]]
      settings = sampling.SampleSettings(max_new_tokens=12, chunk=4, bucket=8)
      got = sampler.generate(params, prompts, settings, jax.random.PRNGKey(0))
      for prompt, row in zip(prompts, got):
        self.assertEqual(row, _greedy_reference(model, params, prompt, 12, sampler._bias),
                         (overrides, prompt))

  def test_top_p_sampling_and_stops(self):
    _, model, params = _model()
    sampler = sampling.Sampler(model, eos_id=EOS, vocab_limit=200)
    prompts = [[5, 9, 17]] * 4
    hot = sampling.SampleSettings(max_new_tokens=16, temperature=1.0, top_p=0.9, chunk=8)
    a = sampler.generate(params, prompts, hot, jax.random.PRNGKey(0))
    b = sampler.generate(params, prompts, hot, jax.random.PRNGKey(0))
    self.assertEqual(a, b)  # seeded
    self.assertGreater(len({tuple(r) for r in a}), 1)  # rows sample differently
    for row in a:
      self.assertTrue(all(0 < t < 200 for t in row))
    tiny_p = sampling.SampleSettings(max_new_tokens=16, temperature=1.0, top_p=1e-6, chunk=8)
    greedy = sampling.SampleSettings(max_new_tokens=16, chunk=8)
    self.assertEqual(sampler.generate(params, prompts, tiny_p, jax.random.PRNGKey(3)),
                     sampler.generate(params, prompts, greedy, jax.random.PRNGKey(4)))
    stopped = sampler.generate(params, prompts[:1], greedy, jax.random.PRNGKey(0),
                               stop_fn=lambda row: len(row) >= 3)
    self.assertLen(stopped[0], 8)  # stops at the first chunk boundary after the condition

  def test_cache_holds_only_the_slots_a_call_fills(self):
    """Every decode step reads the whole cache: it is sized to the padded prompt plus the new
    tokens, not to max_len."""
    _, model, params = _model(scan_layers=True)
    sampler = sampling.Sampler(model, eos_id=EOS)
    tokens = np.ones((2, 8), np.int32)
    _, cache = sampler._prefill(params, tokens, np.tile(np.arange(8, dtype=np.int32), (2, 1)),
                                tokens, slots=20)
    sizes = {path[-1].key: x.shape for path, x in jax.tree_util.tree_flatten_with_path(cache)[0]}
    self.assertEqual(sizes['cached_key'][-3], 20)
    self.assertEqual(sizes['cached_segment'][-1], 20)
    self.assertEqual(model.cfg.max_len, 128)

  def test_bfloat16_compute_samples_like_its_float32_forward(self):
    """Parameters are cast once to the compute dtype; greedy tokens match a full recompute."""
    _, model, params = _model(dtype='bfloat16')
    sampler = sampling.Sampler(model, eos_id=EOS)
    got = sampler.generate(params, [[5, 9, 17, 33]], sampling.SampleSettings(
        max_new_tokens=6, chunk=3, bucket=8), jax.random.PRNGKey(0))
    self.assertEqual(got[0], _greedy_reference(model, params, [5, 9, 17, 33], 6, sampler._bias))

  def test_sharded_model_samples_the_same(self):
    cfg, model, params = _model()
    single = sampling.Sampler(model, eos_id=EOS).generate(
        params, [[5, 9, 17], [7, 8]], sampling.SampleSettings(max_new_tokens=8, chunk=4),
        jax.random.PRNGKey(0))
    cfg = config_lib.replace(cfg, mesh={'num_devices': 0, 'data': 2, 'fsdp': 2, 'tensor': 2},
                             **{'data.seq_len': 16})
    placed = jax.device_put(params, factory.build_runtime(cfg).param_shardings)
    sharded = sampling.Sampler(model, eos_id=EOS).generate(
        placed, [[5, 9, 17], [7, 8]], sampling.SampleSettings(max_new_tokens=8, chunk=4),
        jax.random.PRNGKey(0))
    self.assertEqual(sharded, single)


if __name__ == '__main__':
  absltest.main()
