"""Benchmark shape 2 of the training core: 8 layers / 512 wide / 8 heads, seq 512, batch 8."""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.model.vocab_size = 16384
  c.model.d_model = 512
  c.model.num_layers = 8
  c.model.num_heads = 8
  c.model.max_len = 512
  c.data.seq_len = 512
  c.data.mean_doc_len = 400
  c.train.batch_size = 8
  c.train.steps = 1000
  return c
