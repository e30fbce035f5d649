"""EleutherAI's pythia-160m and its published training checkpoints, through the probes.

Pythia publishes 154 revisions per size: step0, the log-spaced step1 ... step512, then every
1000 steps to step143000. The model fields below are pythia-160m's config.json (GPT-NeoX: partial
rotary over a quarter of each head, parallel attention + MLP residual, exact GELU, untied
unembedding, LayerNorm epsilon 1e-5), so `--mode plan` works offline; `--mode import` reads them
from the revision's own config.json and refuses a mismatch between revisions.

The probes read the seven languages of the multilingual HumanEval (Python, PHP, JavaScript, Go,
C++, C#, Java) from the Debian sources (`bash launch/fetch_debian_sources.sh` first) and npm's
JavaScript, tokenized with pythia's own tokenizer.json (no planted controls: they need a
sentencepiece vocabulary).

With network access (the Hub cache, ~/.cache/huggingface, is reused offline afterwards):
  python -m babel_jax.main --config configs/pythia_series.py --mode plan
  python -m babel_jax.main --config configs/pythia_series.py --workdir runs/pythia160m \
      --mode import --hf EleutherAI/pythia-160m --revisions step0:step143000:1000
  python -m babel_jax.main --config configs/pythia_series.py --workdir runs/pythia160m \
      --mode corpus
  python -m babel_jax.main --config configs/pythia_series.py --workdir runs/pythia160m \
      --mode tokenizer --config.tokenizer.hf_json=runs/pythia160m/hf_tokenizer.json
  python -m babel_jax.main --config configs/pythia_series.py --workdir runs/pythia160m \
      --mode probe
  python -m babel_jax.main --mode export --workdir runs/pythia160m --step 143000 --out DIR
Each imported revision is a ~650 MB float32 checkpoint (162M parameters); the run's
hf_import.json records each revision's step and its files' sha256, and names revisions whose
weights are identical. The probes then walk every imported revision in step order, as they walk
a run's own checkpoints (runtime/walk.py), into runs/pythia160m/probes/ and report/. Only
`--mode tokenizer` reads tokenizer.hf_json; the probes read the tokenizer it wrote. Give every
step the same --config and overrides: `--mode import` saves the run's config.json (its
data.languages are the report's), and `--mode probe` checks its model against it.
"""

from babel_jax.config import default_config


def get_config():
  c = default_config()
  m = c.model
  m.vocab_size, m.d_model, m.num_layers, m.num_heads, m.d_ff = 50304, 768, 12, 12, 3072
  m.max_len = 2048
  m.norm, m.positions, m.mlp = 'layernorm', 'rotary', 'gelu_exact'
  m.rotary_fraction, m.rope_base, m.parallel_residual = 0.25, 10000.0, True
  m.use_bias, m.tie_embeddings, m.norm_eps = True, False, 1e-5
  m.scan_layers = True
  langs = 'python,php,javascript,go,cpp,csharp,java'
  c.corpus.sources = 'debian,npm_js'
  c.corpus.languages = langs
  c.corpus.max_bytes_per_language = 20_000_000
  c.data.source = 'corpus'
  c.data.languages = langs
  c.probe.tokens_per_language = 16384
  c.data.seq_len = 2048
  c.train.batch_size = 8
  c.probe.batch_size = 8
  return c
