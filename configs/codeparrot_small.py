"""CodeParrot-small (a 110M GPT-2 trained on Python only) continued on PHP: the paper's set-up at
small scale, on an open model, with the probes on its dense checkpoints.

The model fields are codeparrot/codeparrot-small's config.json (GPT-2: 12 layers, 768 wide, 12
heads, 32,768 ids, 1,024 positions, LayerNorm epsilon 1e-5, tied embeddings), so `--mode plan`
works offline. The corpus is Python and PHP (the Debian sources: `bash
launch/fetch_debian_sources.sh` first), read with the model's own tokenizer.json; continual
pre-training trains on PHP alone and keeps dense early checkpoints for the probes.

With network access once (the Hub cache is reused offline afterwards):
  python -m babel_jax.main --mode import --hf codeparrot/codeparrot-small --workdir runs/codeparrot
  python -m babel_jax.main --config configs/codeparrot_small.py --workdir runs/cp_php \
      --mode corpus
  python -m babel_jax.main --config configs/codeparrot_small.py --workdir runs/cp_php \
      --mode tokenizer --config.tokenizer.hf_json=runs/codeparrot/hf_tokenizer.json
  python -m babel_jax.main --config configs/codeparrot_small.py --workdir runs/cp_php \
      --config.train.init_from=runs/codeparrot
  python -m babel_jax.main --config configs/codeparrot_small.py --workdir runs/cp_php --mode probe
"""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  m = c.model
  m.vocab_size, m.d_model, m.num_layers, m.num_heads, m.d_ff = 32768, 768, 12, 12, 3072
  m.max_len, m.norm_eps = 1024, 1e-5
  m.norm, m.positions, m.mlp, m.use_bias, m.tie_embeddings = ('layernorm', 'learned', 'gelu',
                                                              True, True)
  m.dtype = 'bfloat16'
  c.corpus.sources = 'python_stdlib,debian'
  c.corpus.languages = c.data.languages = 'python,php'
  c.corpus.max_bytes_per_language = 64_000_000
  c.data.source = 'corpus'
  c.data.weights = '0,1'  # continual pre-training on PHP alone; the probes read both
  c.data.seq_len = 1024
  c.train.steps = 2000
  c.train.batch_size = 32
  c.train.lr = 1e-4
  c.train.warmup_steps = 100
  c.checkpoint.every_steps = 100
  c.checkpoint.log_spaced = 16  # dense early: the paper's stages move fastest there
  c.checkpoint.initial = True
  c.checkpoint.optimizer_state = 'latest'
  return c
