"""The embedded default: the whole Babel Tower study at demo size, about 15 minutes on 2 CPU cores.

`bash launch/demo.sh` runs `--mode experiment` with this config. Python (the standard library)
is the primary language. The new languages are the paper's (PHP, C#, Go, C++ from Debian
sources) when `launch/fetch_debian_sources.sh` has fetched them, else what a fresh machine has:
Java (the JDK's src.zip), C++ (the standard headers) and JavaScript (npm's sources). Force one
set with `--config configs/demo.py:paper` or `--config configs/demo.py:fresh`.

Every language is capped at 4 MB of source, the model is a 4-layer GPT (1.1M parameters) and
HumanEval runs on the first 8 problems of each language: the point is the pipeline, end to end,
on real parts; at this size pass@1 is 0 and the comparison rests on the held-out loss.
"""

import os

from babel_jax.config import default_config
from babel_jax.data import sources

FRESH = ('python_stdlib,jdk_src,cpp_headers,npm_js', 'python,java,cpp,javascript')
PAPER = ('python_stdlib,debian', 'python,php,csharp,go,cpp')


def get_config(languages: str = ''):
  if languages not in ('', 'fresh', 'paper'):
    raise ValueError(f'configs/demo.py:{languages}: expected "fresh" or "paper"')
  fetched = os.path.isfile(os.path.join(sources.debian_dir(), 'paths.txt'))
  paper = languages == 'paper' or (languages == '' and fetched)
  source_names, langs = PAPER if paper else FRESH
  c = default_config()
  c.corpus.sources = source_names
  c.corpus.languages = langs
  c.corpus.max_bytes_per_language = 4_000_000
  c.tokenizer.sample_bytes_per_language = 2_000_000

  c.data.source = 'corpus'
  c.data.languages = langs  # python first: the primary language.
  c.data.seq_len = 320

  c.model.vocab_size = 2048
  c.model.d_model = 128
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.max_len = 320
  c.train.steps = 400
  c.train.batch_size = 8
  c.train.lr = 1e-3
  c.train.warmup_steps = 20
  c.train.log_every = 50
  c.checkpoint.every_steps = 100
  c.checkpoint.log_spaced = 6

  c.probe.tokens_per_language = 8192
  c.probe.max_prompts_per_pair = 3
  c.probe.deactivate = False  # the neuron-deactivation check would double the probing time

  c.eval.problems = 8
  c.eval.max_new_tokens = 64
  c.eval.batch_size = 8

  c.experiment.primary_steps = 500
  c.experiment.continual_steps = 300
  c.experiment.continual_checkpoints = 6
  c.experiment.scratch_steps = 350
  c.experiment.seeds = 3
  return c
