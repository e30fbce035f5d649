"""A run's data source from its config: synthetic or corpus, its train or validation split."""

from __future__ import annotations

from babel_jax import data as data_lib
from babel_jax.data import pipeline, synthetic
from babel_jax.data.batch import DataSource
from babel_jax.errors import ConfigError


def make_source(cfg, process_index: int = 0, process_count: int = 1, workdir: str = '',
                split: str = 'train') -> DataSource:
  """The configured source, yielding this process's rows of every global batch of `split`
  (data.split_settings): 'train' what the run trains on, 'validation' the probes' held-out
  sample (documents, or synthetic batches, that training never sees)."""
  if cfg.data.source == 'synthetic':
    return synthetic.from_config(cfg, process_index, process_count, split)
  if cfg.data.source == 'corpus':
    spec, batch_size = data_lib.split_settings(cfg, split)
    train = split == 'train'
    # The held-out sample reads every language, drawn in training or not: no vocabulary check.
    return pipeline.CorpusSource(
        data_lib.corpus_dir(cfg, workdir), data_lib.tokenizer_dir(cfg, workdir),
        cfg.data.languages, spec, batch_size, cfg.data.seq_len, cfg.seed, process_index,
        process_count, cfg.data.read_threads, cfg.data.prefetch if train else 0, split=split,
        vocab_size=cfg.model.vocab_size if train else None,
        facts_rate=cfg.data.facts_rate if train else 0.0)
  raise ConfigError(f'data.source={cfg.data.source!r} is not known')
