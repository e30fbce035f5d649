from tests import testing  # noqa: F401  (sets XLA_FLAGS before jax is imported)
