"""The embedded default run: a small GPT trained for a few minutes on 2 CPU cores.

Until the corpus pipeline lands it trains on the deterministic synthetic source in three
languages; it writes checkpoints densely early (log-spaced) as the dynamics study needs.
"""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.model.vocab_size = 1024
  c.model.d_model = 128
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.max_len = 128
  c.data.seq_len = 128
  c.data.mean_doc_len = 64
  c.train.steps = 300
  c.train.batch_size = 16
  c.train.lr = 3e-3
  c.train.warmup_steps = 20
  c.train.log_every = 20
  c.checkpoint.every_steps = 100
  c.checkpoint.log_spaced = 12
  return c
