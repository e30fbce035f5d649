"""The paper's 6.7B GPT-2 model: 32 layers, 4096 wide, 32 heads, context 2048.

Our assumptions where the paper is silent: vocabulary 50304 (GPT-2's 50257 padded to a multiple
of 128 for sharding), batch of 512 x 2048 tokens, AdamW lr 2e-4 with 2000 warmup steps, bf16
compute with float32 parameters, scanned and rematerialised layers.
"""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.model.vocab_size = 50304
  c.model.d_model = 4096
  c.model.num_layers = 32
  c.model.num_heads = 32
  c.model.max_len = 2048
  c.model.dtype = 'bfloat16'
  c.model.remat = 'dots'
  c.model.scan_layers = True
  c.data.seq_len = 2048
  c.data.mean_doc_len = 1024
  c.train.steps = 20000
  c.train.batch_size = 512
  c.train.grad_accum = 1
  c.train.lr = 1.2e-4
  c.train.warmup_steps = 2000
  c.train.log_every = 10
  c.checkpoint.every_steps = 1000
  c.checkpoint.log_spaced = 40
  c.checkpoint.keep_last = 2
  return c
