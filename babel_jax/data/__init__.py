"""Data: the corpus builder, tokenizer, grain pipeline and synthetic data; `loader.make_source`
gives a run's batches. Here: what those parts share (paths, planted languages, what a split
holds), light enough for a host with JAX alone."""

import os

from babel_jax.data import mixture_spec
from babel_jax.data import planted
from babel_jax.errors import ConfigError


def corpus_dir(cfg, workdir: str) -> str:
  return cfg.data.corpus_dir or os.path.join(workdir, 'corpus')


def tokenizer_dir(cfg, workdir: str) -> str:
  return cfg.data.tokenizer_dir or os.path.join(corpus_dir(cfg, workdir), 'tokenizer')


def plants(cfg) -> list:
  """The planted languages of a synthetic run: corpus.planted, else those in data.languages
  (a corpus records its own in the manifest)."""
  names = cfg.corpus.planted or [lang for lang in cfg.data.languages if planted.parse(lang)]
  return planted.specs(names, cfg.corpus.planted_seed, cfg.corpus.planted_share)


def split_settings(cfg, split: str) -> tuple[mixture_spec.MixtureSpec, int]:
  """The mixture and global batch size of a split: 'train' the run's mixture at train.batch_size;
  'validation' (the probes' held-out sample) every language alike at probe.batch_size."""
  if split == 'train':
    return mixture_spec.from_config(cfg), cfg.train.batch_size
  if split == 'validation':
    languages = cfg.data.languages
    uniform = mixture_spec.MixtureSpec({lang: 1 / len(languages) for lang in languages})
    return uniform, cfg.probe.batch_size
  raise ConfigError(f"data split {split!r}: expected 'train' or 'validation'")
