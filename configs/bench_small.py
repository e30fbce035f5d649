"""Benchmark shape 1 of the training core: 4 layers / 256 wide / 4 heads, seq 256, batch 8."""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.model.vocab_size = 8192
  c.model.d_model = 256
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.max_len = 256
  c.data.seq_len = 256
  c.data.mean_doc_len = 200
  c.train.batch_size = 8
  c.train.steps = 1000
  return c
