"""Data: the corpus builder, tokenizer and grain pipeline, behind one `make_source`."""

import os

from babel_jax.data.batch import DataSource
from babel_jax.errors import ConfigError
from babel_jax.mixture import spec as mixture_spec


def corpus_dir(cfg, workdir: str) -> str:
  return cfg.data.corpus_dir or os.path.join(workdir, 'corpus')


def tokenizer_dir(cfg, workdir: str) -> str:
  return cfg.data.tokenizer_dir or os.path.join(corpus_dir(cfg, workdir), 'tokenizer')


def plants(cfg) -> list:
  """The planted languages of a synthetic run: corpus.planted, else those in data.languages
  (a corpus records its own in the manifest)."""
  from babel_jax.data import planted
  names = cfg.corpus.planted or [lang for lang in cfg.data.languages if planted.parse(lang)]
  return planted.specs(names, cfg.corpus.planted_seed, cfg.corpus.planted_share)


def make_source(cfg, process_index: int = 0, process_count: int = 1,
                workdir: str = '') -> DataSource:
  """The configured data source, yielding this process's rows of every global batch."""
  spec = mixture_spec.from_config(cfg)
  languages = cfg.data.languages
  if cfg.data.source == 'synthetic':
    from babel_jax.data.synthetic import SyntheticSource
    return SyntheticSource(
        languages, tuple(spec.vector(languages)), cfg.model.vocab_size, cfg.train.batch_size,
        cfg.data.seq_len, cfg.data.mean_doc_len, cfg.seed, process_index, process_count,
        plants(cfg), base=cfg.tokenizer.vocab_size)
  if cfg.data.source == 'corpus':
    from babel_jax.data.pipeline import CorpusSource
    return CorpusSource(
        corpus_dir(cfg, workdir), tokenizer_dir(cfg, workdir), languages, spec,
        cfg.train.batch_size, cfg.data.seq_len, cfg.seed, process_index, process_count,
        cfg.data.read_threads, cfg.data.prefetch, vocab_size=cfg.model.vocab_size,
        facts_rate=cfg.data.facts_rate)
  raise ConfigError(f'data.source={cfg.data.source!r} is not known')
