"""The paper's 6.7B GPT-2 model: 32 layers, 4096 wide, 32 heads, context 2048.

Everything else as in gpt2_1p3b.py (our assumptions are listed there), with the learning rate
lowered to 1.2e-4 for the wider model. Slices as in gpt2_1p3b.py (`configs/gpt2_6p7b.py:SLICE`),
with the gradient accumulation the larger activations need; on 8xh100 it also turns on full
rematerialisation.
"""

import os

from babel_jax import config as config_lib


GRAD_ACCUM = {'': 1, 'v4-32': 16, 'v5p-64': 2, 'v5e-256': 2, '8xh100': 16}


def get_config(slice_name: str = ''):
  c = config_lib.load_file(os.path.join(os.path.dirname(__file__), 'gpt2_1p3b.py'), slice_name)
  c.train.grad_accum = GRAD_ACCUM[slice_name]
  c.model.d_model = 4096
  c.model.num_layers = 32
  c.model.num_heads = 32
  c.train.lr = 1.2e-4
  return c
