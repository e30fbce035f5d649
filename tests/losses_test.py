"""Hand-written backward passes agree with autodiff of the textbook formulas."""

from tests import testing  # noqa: F401  (first: fake devices)

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import absltest

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


if __name__ == '__main__':
  absltest.main()
