"""The embedded default run: a real code corpus, its tokenizer and a small GPT, on 2 CPU cores.

`bash launch/demo.sh` runs --mode corpus, --mode tokenizer and --mode train with this config.
The corpus comes from sources present on a fresh machine (Python standard library, JDK src.zip,
C++ standard headers, npm's JavaScript), capped per language so it builds in seconds; the run
writes checkpoints densely early (log-spaced), as the dynamics study needs.
"""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  c.corpus.sources = 'python_stdlib,jdk_src,cpp_headers,npm_js'
  c.corpus.languages = 'python,java,cpp,javascript'
  c.corpus.max_bytes_per_language = 4_000_000
  c.tokenizer.sample_bytes_per_language = 2_000_000

  c.data.source = 'corpus'
  c.data.languages = 'python,java,cpp,javascript'  # python first: the primary language.
  c.data.weights = '0.4,0.2,0.2,0.2'
  c.data.seq_len = 128

  c.model.vocab_size = 2048
  c.model.d_model = 128
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.max_len = 128
  c.train.steps = 300
  c.train.batch_size = 16
  c.train.lr = 3e-3
  c.train.warmup_steps = 20
  c.train.log_every = 20
  c.checkpoint.every_steps = 100
  c.checkpoint.log_spaced = 12
  return c
