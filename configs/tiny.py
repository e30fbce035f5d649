"""Tiny GPT on synthetic data: trains on one CPU core in seconds; used by the tests."""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.model.vocab_size = 256
  c.model.d_model = 32
  c.model.num_layers = 2
  c.model.num_heads = 2
  c.model.max_len = 64
  c.data.seq_len = 64
  c.data.mean_doc_len = 24
  c.train.steps = 40
  c.train.batch_size = 8
  c.train.lr = 1e-2
  c.train.warmup_steps = 5
  c.train.log_every = 1
  c.train.peak_flops = 1e11  # skip measuring: tests need not time a matmul.
  c.checkpoint.every_steps = 10
  c.checkpoint.log_spaced = 4
  c.checkpoint.keep_last = 2
  # --mode experiment on synthetic data: no corpus token counts, so a uniform baseline.
  c.experiment.original = 'uniform'
  c.experiment.primary_tokens = 1e6
  c.experiment.continual_checkpoints = 4
  c.experiment.seeds = 2
  return c
