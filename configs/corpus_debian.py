"""The paper's languages (Python, PHP, C#, Go, C++) from Debian sources, at research scale.

First `bash launch/fetch_debian_sources.sh` (about 3 minutes, 1.4 GB), then
  python -m babel_jax.main --config configs/corpus_debian.py --workdir runs/debian --mode corpus
  python -m babel_jax.main --config configs/corpus_debian.py --workdir runs/debian --mode tokenizer
The model section is the demo's; point a bigger config's data.corpus_dir at runs/debian/corpus.
"""

import os

from babel_jax import config as config_lib


def get_config():
  c = config_lib.load_file(os.path.join(os.path.dirname(__file__), 'demo.py'))
  c.corpus.sources = 'debian'
  c.corpus.languages = 'python,php,csharp,go,cpp'
  c.corpus.max_bytes_per_language = 40_000_000
  c.tokenizer.sample_bytes_per_language = 10_000_000
  c.model.vocab_size = 16384
  c.data.languages = 'python,php,csharp,go,cpp'
  c.data.weights = ''
  return c
