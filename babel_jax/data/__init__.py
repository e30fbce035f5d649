"""Data: sources that yield packed `Batch`es with per-token language ids."""

from babel_jax import config as config_lib
from babel_jax.data.batch import DataSource
from babel_jax.data.synthetic import SyntheticSource


def make_source(cfg, process_index: int = 0, process_count: int = 1) -> DataSource:
  """The configured data source, yielding this process's rows of every global batch."""
  if cfg.data.source == 'synthetic':
    return SyntheticSource(
        config_lib.languages(cfg), config_lib.mixture_weights(cfg), cfg.model.vocab_size,
        cfg.train.batch_size, cfg.data.seq_len, cfg.data.mean_doc_len, cfg.seed,
        process_index, process_count)
  raise config_lib.ConfigError(f'data.source={cfg.data.source!r} is not known')
