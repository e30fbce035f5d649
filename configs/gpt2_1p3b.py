"""The paper's 1.3B GPT-2 model: 24 layers, 2048 wide, 16 heads, context 2048.

Our assumptions where the paper is silent: vocabulary 50304 (GPT-2's 50257 padded to a multiple
of 128 for sharding), batch of 512 x 2048 tokens, AdamW lr 2e-4 with 2000 warmup steps, bf16
compute with float32 parameters, scanned and rematerialised layers.

Sharding presets for common slices: `--config configs/gpt2_1p3b.py:SLICE` with SLICE one of
v4-32, v5p-64, v5e-256, 8xh100, h100, h200 sets mesh.preset and the gradient accumulation that makes
`--mode plan` fit the slice's memory (check with --mode plan before launching).
"""

from babel_jax.config import default_config

# slice -> train.grad_accum that fits (micro-batch per device x activations under remat='dots').
GRAD_ACCUM = {'': 1, 'v4-32': 4, 'v5p-64': 1, 'v5e-256': 1, '8xh100': 8, 'h100': 32, 'h200': 16}


def get_config(slice_name: str = ''):
  if slice_name not in GRAD_ACCUM:
    raise ValueError(f'unknown slice {slice_name!r}; known: {sorted(GRAD_ACCUM)}')
  c = default_config()
  c.mesh.preset = slice_name
  c.train.grad_accum = GRAD_ACCUM[slice_name]
  c.model.vocab_size = 50304
  c.model.d_model = 2048
  c.model.num_layers = 24
  c.model.num_heads = 16
  c.model.max_len = 2048
  c.model.dtype = 'bfloat16'
  c.model.remat = 'dots'
  c.model.scan_layers = True
  c.data.seq_len = 2048
  c.data.mean_doc_len = 1024
  c.train.steps = 20000
  c.train.batch_size = 512
  c.train.lr = 2e-4
  c.train.warmup_steps = 2000
  c.train.log_every = 10
  c.checkpoint.every_steps = 1000
  c.checkpoint.log_spaced = 40
  c.checkpoint.keep_last = 2
  return c
