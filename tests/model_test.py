"""The functional decoder: shapes, intermediates, document isolation, variants agree.

Every test runs with `jax_numpy_rank_promotion='raise'` (no silent broadcasting in the model), and
the forward pass is checked with and without jit (after nanodo's model tests).
"""

from tests import testing  # noqa: F401  (first: fake devices)

import dataclasses
import functools
from unittest import mock

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from babel_jax import model as model_lib
from babel_jax.config import ConfigError
from babel_jax.model import attention as attention_lib
from babel_jax.model import backend


def _model(**overrides):
  model = model_lib.build_model(dataclasses.replace(testing.config().model, **overrides))
  return model, nn.unbox(model_lib.init_boxed(model, jax.random.PRNGKey(0), 16))


def _batch(b=2, length=16, seed=0):
  tokens = jax.random.randint(jax.random.PRNGKey(seed), (b, length), 1, 256)
  return {'tokens': tokens, 'positions': jnp.tile(jnp.arange(length), (b, 1)),
          'segment_ids': jnp.ones((b, length), jnp.int32)}


LLAMA = dict(norm='rmsnorm', positions='rotary', mlp='swiglu', use_bias=False,
             tie_embeddings=False)


class ModelTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(jax.numpy_rank_promotion('raise'))

  @parameterized.named_parameters(
      ('gpt2', {}, True), ('llama', LLAMA, True), ('gpt2_scan', {'scan_layers': True}, True),
      ('llama_scan_remat', {**LLAMA, 'scan_layers': True, 'remat': 'full'}, True),
      ('llama_scan_remat_eager', {**LLAMA, 'scan_layers': True, 'remat': 'full'}, False))
  def test_shapes_and_intermediates(self, overrides, jit):
    model, params = _model(**overrides)
    mc = model.cfg
    forward = functools.partial(model_lib.forward, model, intermediates=True)
    if jit:
      logits, inter = jax.jit(forward)(params, _batch())
    else:
      with jax.disable_jit():
        logits, inter = forward(params, _batch())
    self.assertEqual(logits.shape, (2, 16, mc.vocab_size))
    self.assertEqual(logits.dtype, jnp.float32)
    self.assertIsInstance(inter, model_lib.Intermediates)
    self.assertEqual(inter.resid_NxBxLxD.shape, (mc.num_layers, 2, 16, mc.d_model))
    self.assertEqual(inter.mlp_act_NxBxLxF.shape, (mc.num_layers, 2, 16, mc.d_ff))
    # The last layer's residual stream through the head is exactly the model's output.
    head = model.apply({'params': params}, inter.resid_NxBxLxD[-1],
                       method=model_lib.Transformer.decode)
    np.testing.assert_allclose(head, logits, rtol=1e-5, atol=1e-5)
    self.assertTrue(bool(jnp.all(jnp.isfinite(logits))))
    # The intermediates are a pytree: they pass through jit and tree maps as one value.
    self.assertLen(jax.tree.leaves(inter), 2)

  def test_jit_and_eager_agree(self):
    model, params = _model()
    fwd = functools.partial(model_lib.forward, model)
    with jax.disable_jit():
      eager = fwd(params, _batch())
    np.testing.assert_allclose(jax.jit(fwd)(params, _batch()), eager, rtol=1e-5, atol=1e-5)

  def test_bfloat16_compute_keeps_float32_params(self):
    model, params = _model(dtype='bfloat16')
    self.assertTrue(all(x.dtype == jnp.float32 for x in jax.tree.leaves(params)))
    _, inter = model_lib.forward(model, params, _batch(), intermediates=True)
    self.assertEqual(inter.mlp_act_NxBxLxF.dtype, jnp.bfloat16)
    ref_model, _ = _model()
    np.testing.assert_allclose(model_lib.forward(model, params, _batch()),
                               model_lib.forward(ref_model, params, _batch()), atol=0.1)

  def test_plain_forward_has_no_intermediates(self):
    model, params = _model()
    out = model_lib.forward(model, params, _batch())
    self.assertIsInstance(out, jax.Array)

  def test_packed_documents_do_not_attend_across(self):
    model, params = _model(positions='rotary')
    b = _batch()
    seg = jnp.concatenate([jnp.ones((2, 8), jnp.int32), 2 * jnp.ones((2, 8), jnp.int32)], 1)
    pos = jnp.concatenate([jnp.arange(8), jnp.arange(8)])[None].repeat(2, 0)
    packed = {**b, 'segment_ids': seg, 'positions': pos}
    changed = {**packed, 'tokens': packed['tokens'].at[:, :8].set(7)}
    out_a = model_lib.forward(model, params, packed)
    out_b = model_lib.forward(model, params, changed)
    np.testing.assert_allclose(out_a[:, 8:], out_b[:, 8:], rtol=1e-5, atol=1e-5)
    self.assertFalse(np.allclose(out_a[:, :8], out_b[:, :8]))
    # The second document alone gives the same logits as packed behind the first.
    alone = {'tokens': packed['tokens'][:, 8:], 'positions': pos[:, :8],
             'segment_ids': jnp.ones((2, 8), jnp.int32)}
    np.testing.assert_allclose(model_lib.forward(model, params, alone), out_a[:, 8:],
                               rtol=1e-4, atol=1e-5)

  def test_causal(self):
    model, params = _model()
    b = _batch()
    later = {**b, 'tokens': b['tokens'].at[:, 10:].set(3)}
    np.testing.assert_allclose(model_lib.forward(model, params, b)[:, :10],
                               model_lib.forward(model, params, later)[:, :10], atol=1e-5)

  def test_scan_matches_unrolled(self):
    model, params = _model()
    scanned, _ = _model(scan_layers=True)
    n = model.cfg.num_layers
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[params[f'layer_{i}'] for i in range(n)])
    sparams = {k: v for k, v in params.items() if not k.startswith('layer_')}
    sparams['layers'] = stacked
    np.testing.assert_allclose(model_lib.forward(scanned, sparams, _batch()),
                               model_lib.forward(model, params, _batch()), rtol=1e-5, atol=1e-5)

  def test_attention_implementations_agree(self):
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, 24, 2, 8)) for i in range(3))
    seg = jnp.array([[1] * 10 + [2] * 14, [1] * 24])
    ref = attention_lib.attention(q, k, v, seg, impl='xla')
    w = jax.random.normal(jax.random.PRNGKey(9), ref.shape)
    loss = lambda impl, chunk: lambda q, k, v: jnp.sum(
        attention_lib.attention(q, k, v, seg, impl, chunk) * w)
    ref_grads = jax.grad(loss('xla', 0), (0, 1, 2))(q, k, v)
    for chunk in (5, 8, 24):
      np.testing.assert_allclose(attention_lib.attention(q, k, v, seg, 'chunked', chunk), ref,
                                 rtol=1e-5, atol=1e-5)
      for ours, theirs in zip(jax.grad(loss('chunked', chunk), (0, 1, 2))(q, k, v), ref_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)

  def test_attention_auto_choice_per_backend(self):
    bf16, f32 = jnp.bfloat16, jnp.float32
    self.assertEqual(attention_lib.resolve('auto', f32, 64, 2, 16), 'chunked')  # this CPU
    self.assertEqual(attention_lib.resolve('xla', bf16, 64, 2, 16), 'xla')
    with self.assertRaisesRegex(ConfigError, "attention_impl='cudnn'.*needs a GPU"):
      attention_lib.resolve('cudnn', bf16, 64, 2, 16)
    with mock.patch.object(backend, 'platform', return_value='tpu'):
      self.assertEqual(attention_lib.resolve('auto', bf16, 64, 2, 16), 'xla')
    with mock.patch.object(backend, 'platform', return_value='gpu'):
      self.assertEqual(attention_lib.resolve('auto', f32, 64, 2, 16), 'xla')  # cuDNN is 16-bit
      self.assertEqual(attention_lib.resolve('auto', bf16, 64, 2, 12), 'xla')  # head dim % 8
      with self.assertRaisesRegex(ConfigError, 'model.dtype=bfloat16'):
        attention_lib.resolve('cudnn', f32, 64, 2, 16)
      with mock.patch.object(attention_lib, '_cudnn_compiles', return_value=None):
        self.assertEqual(attention_lib.resolve('auto', bf16, 64, 2, 16), 'cudnn')
      # cuDNN refusing the shape (here: a CPU cannot compile it) falls back to 'xla', warned.
      attention_lib._cudnn_compiles.cache_clear()
      with self.assertLogs(level='WARNING') as logs:
        self.assertEqual(attention_lib.resolve('auto', bf16, 64, 2, 16), 'xla')
      self.assertIn('cuDNN flash attention does not compile', logs.output[0])
    attention_lib._cudnn_compiles.cache_clear()

  def test_backward_paths_agree_on_the_model(self):
    """Gradients of the whole model: CPU-tuned backward passes vs plain autodiff (GPU/TPU)."""
    model, params = _model()
    batch = _batch()
    targets = jnp.roll(batch['tokens'], -1, axis=1)
    from babel_jax.train import losses  # pylint: disable=g-import-not-at-top

    def loss(p):
      return losses.cross_entropy(model_lib.forward(model, p, batch), targets).mean()

    with backend.use_hand_written_backward(True):
      v_cpu, g_cpu = jax.jit(jax.value_and_grad(loss))(params)
    with backend.use_hand_written_backward(False):
      v_ad, g_ad = jax.jit(jax.value_and_grad(loss))(params)
    np.testing.assert_allclose(v_cpu, v_ad, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g_cpu), jax.tree.leaves(g_ad)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

  def test_neuron_mask_zeroes_neurons(self):
    model, params = _model()
    mc = model.cfg
    ones = jnp.ones((mc.num_layers, mc.d_ff))
    base = model_lib.forward(model, params, _batch())
    np.testing.assert_allclose(model_lib.forward(model, params, _batch(), neuron_mask_NxF=ones),
                               base, atol=1e-6)
    off = model_lib.forward(model, params, _batch(), neuron_mask_NxF=ones.at[0].set(0.0))
    self.assertGreater(float(jnp.abs(off - base).max()), 1e-3)

  def test_param_count_and_flops(self):
    model, params = _model()
    mc = model.cfg
    d, f, n, v = mc.d_model, mc.d_ff, mc.num_layers, mc.vocab_size
    per_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d  # weights, biases, two norms
    expected = n * per_layer + v * d + mc.max_len * d + 2 * d
    self.assertEqual(model_lib.param_count(params), expected)
    self.assertEqual(model_lib.flops_per_token(mc, 64),
                     6 * (n * (4 * d * d + 2 * d * f) + d * v) + 12 * n * d * 64)


if __name__ == '__main__':
  absltest.main()
