"""Hand-written backward passes agree with autodiff of the textbook formulas, and the per-backend
choice (hand-written on CPU, autodiff elsewhere) gives the same values and gradients."""

from tests import testing  # noqa: F401  (first: fake devices)

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import absltest

from babel_jax.model import backend
from babel_jax.model.transformer import matmul, tied_logits
from babel_jax.train.losses import cross_entropy


class LossesTest(absltest.TestCase):

  def test_cross_entropy_value_and_gradient(self):
    logits = 3 * jax.random.normal(jax.random.PRNGKey(0), (2, 5, 11))
    targets = jax.random.randint(jax.random.PRNGKey(1), (2, 5), 0, 11)
    weights = jax.random.uniform(jax.random.PRNGKey(2), (2, 5))
    ref = lambda l: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(l, targets) * weights)
    ours = lambda l: jnp.sum(cross_entropy(l, targets) * weights)
    np.testing.assert_allclose(ours(logits), ref(logits), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(ours)(logits), jax.grad(ref)(logits), atol=1e-6)

  def test_tied_logits_gradient(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
    emb = jax.random.normal(jax.random.PRNGKey(1), (7, 4))
    w = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 7))
    ref = lambda x, e: jnp.sum(jnp.einsum('bld,vd->blv', x, e) * w)
    ours = lambda x, e: jnp.sum(tied_logits(x, e) * w)
    for a, b in zip(jax.grad(ours, (0, 1))(x, emb), jax.grad(ref, (0, 1))(x, emb)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

  def test_matmul_gradient(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 4))
    w = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
    c = jax.random.normal(jax.random.PRNGKey(2), (6, 5))
    ours = jax.grad(lambda x, w: jnp.sum(matmul(x, w) * c), (0, 1))(x, w)
    ref = jax.grad(lambda x, w: jnp.sum((x @ w) * c), (0, 1))(x, w)
    for a, b in zip(ours, ref):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

  def test_backend_paths_agree(self):
    """The GPU/TPU path (plain autodiff) traced on CPU matches the CPU path, value and grads."""
    logits = 3 * jax.random.normal(jax.random.PRNGKey(0), (2, 5, 11))
    targets = jax.random.randint(jax.random.PRNGKey(1), (2, 5), 0, 11)
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 4))
    w = jax.random.normal(jax.random.PRNGKey(3), (4, 5))
    h = jax.random.normal(jax.random.PRNGKey(4), (2, 3, 4))
    emb = jax.random.normal(jax.random.PRNGKey(5), (7, 4))
    fns = [(lambda l: jnp.sum(cross_entropy(l, targets) ** 2), (logits,)),
           (lambda x, w: jnp.sum(jnp.sin(matmul(x, w))), (x, w)),
           (lambda h, e: jnp.sum(jnp.sin(tied_logits(h, e))), (h, emb))]
    for fn, args in fns:
      grad = jax.jit(jax.value_and_grad(fn, tuple(range(len(args)))))
      with backend.use_hand_written_backward(True):
        v_cpu, g_cpu = grad(*args)
      with backend.use_hand_written_backward(False):
        v_other, g_other = jax.jit(jax.value_and_grad(fn, tuple(range(len(args)))))(*args)
      np.testing.assert_allclose(v_cpu, v_other, rtol=1e-6)
      for a, b in zip(g_cpu, g_other):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    self.assertTrue(backend.hand_written_backward())  # the override ends with its block

  def test_tied_logits_float32_output_bfloat16_gradients(self):
    """bfloat16 compute: logits come out float32; both backward matmuls stay in bfloat16."""
    h = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 8), jnp.bfloat16)
    emb = jax.random.normal(jax.random.PRNGKey(1), (16, 8), jnp.bfloat16)
    self.assertEqual(tied_logits(h, emb).dtype, jnp.float32)
    ref = jnp.einsum('bld,vd->blv', h.astype(jnp.float32), emb.astype(jnp.float32))
    np.testing.assert_allclose(tied_logits(h, emb), ref, rtol=1e-6, atol=1e-6)
    for flag in (True, False):
      with backend.use_hand_written_backward(flag):
        jaxpr = jax.make_jaxpr(jax.grad(lambda h, e: tied_logits(h, e).sum(), (0, 1)))(h, emb)
      dots = [e for e in jaxpr.eqns if e.primitive.name == 'dot_general']
      self.assertLen(dots, 2, flag)
      for eqn in dots:
        self.assertTrue(all(v.aval.dtype == jnp.bfloat16 for v in eqn.invars), (flag, eqn))


if __name__ == '__main__':
  absltest.main()
