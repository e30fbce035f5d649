"""The paper's study at paper scale: the 1.3B GPT-2, Python then PHP, C#, Go, C++, for a TPU pod.

  python -m babel_jax.main --config configs/babel_tower.py:v5p-64 --workdir gs-fuse/study \
      --mode experiment          # (check memory first with --mode plan)

Token budgets follow the paper (docs/method.md) at 512 x 2048 = 1.05M tokens per step: phase 1
trains on 11B Python tokens; the original mixture is the paper's (Python 11B, PHP 23B, C# 16B,
Go 11B, C++ 28B); Algorithm 1 starts from the 11B Python budget; the from-scratch runs train for the
original mixture's 89B tokens (equal compute for both mixtures). Our assumptions where the
paper is silent: 10B tokens of continual pre-training per new language with 40 evenly spaced
(and 40 log-spaced) checkpoints, lr 1e-4 for continual training, 3 seeds, greedy pass@1 on all
164 problems. The corpus is built from Debian sources (launch/fetch_debian_sources.sh); for the
paper's token counts point data.corpus_dir at a corpus of that size (the corpus and tokenizer
phases reuse any corpus built with the same settings). `:SLICE` as in gpt2_1p3b.py.
"""

import os

from babel_jax import config as config_lib

TOKENS_PER_STEP = 512 * 2048
ORIGINAL = {'python': 11e9, 'php': 23e9, 'csharp': 16e9, 'go': 11e9, 'cpp': 28e9}


def _gpt2_1p3b(slice_name: str):
  return config_lib.load_file(os.path.join(os.path.dirname(__file__), 'gpt2_1p3b.py'), slice_name)


def get_config(slice_name: str = ''):
  c = _gpt2_1p3b(slice_name)
  langs = list(ORIGINAL)
  c.corpus.sources = 'debian'
  c.corpus.languages = ','.join(langs)
  c.tokenizer.vocab_size = 50304
  c.tokenizer.sample_bytes_per_language = 200_000_000
  c.data.source = 'corpus'
  c.data.languages = ','.join(langs)
  c.data.target_tokens = ','.join(str(ORIGINAL[lang]) for lang in langs)
  c.checkpoint.log_spaced = 40

  c.eval.problems = 0
  c.eval.max_new_tokens = 512
  c.eval.batch_size = 64
  c.eval.workers = 16

  e = c.experiment
  e.primary_steps = round(ORIGINAL['python'] / TOKENS_PER_STEP)
  e.continual_steps = round(10e9 / TOKENS_PER_STEP)
  e.continual_lr = 1e-4
  e.continual_checkpoints = 40
  e.scratch_steps = round(sum(ORIGINAL.values()) / TOKENS_PER_STEP)
  e.seeds = 3
  e.original = 'config'
  e.primary_tokens = ORIGINAL['python']
  e.fit_fallback = 'raise'
  return c
