"""The grain pipeline: corpus shards -> tokens -> packed rows -> language mixture -> batches.

Per language: ArrayRecord source, this host's slice, shuffle (reseeded every epoch), repeat,
tokenize on `read_threads` threads, then pack into rows of seq_len + 1 tokens (documents are
concatenated and split, so rows carry no padding). Rows of one language are then interleaved by a
deterministic deficit schedule: the next row comes from the language furthest below its target
share, so the realised token share tracks the MixtureSpec to within one row. Rows are batched,
turned into the batch contract (data/batch.py) and prefetched by a background thread.

Planted knowledge (data/facts.py, docs/facts.md): when the corpus records facts, the training
stream of their language holds a fact document at `facts_rate` of its document positions
(`_FactSlots`: round(rate * 1000) seeded positions in every block of 1000 documents); the shard
documents fill the other positions in their usual order, none skipped. Only the taught facts,
only that language's own rendering, only that language's train stream: the validation split and
every other language never see one, and the untaught twins reach no stream at all.

The iterator state (a small JSON dict) goes into every checkpoint; restoring it yields exactly
the next batch. A run resumed with a new spec keeps its place in every language's stream and
starts counting shares afresh under the new weights.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import zlib
from typing import Any, Sequence

import grain
import numpy as np

from babel_jax.data import facts as facts_lib
from babel_jax.data import manifest as manifest_lib
from babel_jax.data import mixture_spec as spec_lib
from babel_jax.data import planted
from babel_jax.data import tokenizer as tok_lib
from babel_jax.data.batch import NO_LANG, PAD_ID, TARGET_MASK, zero_is_token
from babel_jax.errors import ConfigError, DataError


class _Tokenize(grain.transforms.Map):
  """ArrayRecord JSON record -> {'tokens': [BOS] + ids + [EOS]} (the tokenizer's own BOS and
  EOS), moved into a planted language's ids when the stream is one (data/planted.py)."""

  def __init__(self, tokenizer: tok_lib.Tokenizer, plant=None):
    self._tok, self._plant = tokenizer, plant

  def map(self, record: bytes) -> dict[str, np.ndarray]:
    ids = self._tok.encode(json.loads(record)['text'])
    tokens = np.asarray([self._tok.bos_id, *ids, self._tok.eos_id], np.int32)
    if self._plant is not None:
      tokens = planted.transform(*self._plant, tokens)
    return {'tokens': tokens}


def planted_maps(manifest: dict[str, Any], tokenizer: tok_lib.Tokenizer,
                 languages: Sequence[str] | None = None
                 ) -> dict[str, tuple[planted.Planted, np.ndarray]]:
  """Every planted language of the corpus among `languages` (None: all): how it is made and its
  id map (real id -> its id). Planted id blocks need a sentencepiece vocabulary: they keep id 0
  as padding and read '<...>' pieces as bytes, while a tokenizer.json's id 0 is a real token
  and its byte-level pieces are letters."""
  names = [name for name, info in manifest['languages'].items() if 'planted' in info
           and (languages is None or name in languages)]
  if names and zero_is_token(tokenizer):
    raise ConfigError(f'data.languages names the planted languages {names}: planted languages '
                      '(corpus.planted, experiment.controls) need a sentencepiece tokenizer '
                      '(--mode tokenizer without tokenizer.hf_json), not a tokenizer.json')
  movable = planted.identifier_pieces(tokenizer.pieces())
  out = {}
  for name, info in manifest['languages'].items():
    if name in names:
      p = planted.Planted(**info['planted'])
      out[name] = (p, planted.id_map(p, tokenizer.vocab_size, movable))
  return out


FACT_VARIANTS = 8  # documents per taught fact: its definition, with uses on other inputs
_FACT_BLOCK = 1000  # _FactSlots places round(rate * _FACT_BLOCK) fact documents per block


def fact_documents(fact_set, language: str) -> list[str]:
  """The training documents of `fact_set`'s taught facts in `language`: each fact's definition
  and uses (data/facts.py `document`), once per variant, the uses on `sample_inputs(fact, 3,
  seed=variant)`. The untaught twins have none."""
  return [facts_lib.document(fact, language, facts_lib.sample_inputs(fact, 3, seed=variant))
          for variant in range(FACT_VARIANTS) for fact in fact_set.taught]


class _FactSlots(grain.transforms.DatasetSelectionMap):
  """Index of a language's stream -> (0, shard document) or (1, fact document).

  In every block of _FACT_BLOCK documents, k = round(rate * _FACT_BLOCK) positions drawn with
  (seed, block) hold fact documents and the rest the shard documents in order, so the share is
  exactly k / _FACT_BLOCK per block, the positions are random, and no shard document is skipped.
  Stateless apart from a cache of the last block's positions (grain asks for random access).
  """

  def __init__(self, rate: float, seed: int):
    self._k = min(max(1, round(rate * _FACT_BLOCK)), _FACT_BLOCK - 1)
    self._seed = seed
    self._last = (-1, None)

  @property
  def share(self) -> float:
    return self._k / _FACT_BLOCK

  def __len__(self) -> int:
    return sys.maxsize

  def _positions(self, block: int) -> np.ndarray:
    last_block, pos = self._last
    if last_block != block:
      rng = np.random.default_rng([self._seed, block])
      pos = np.sort(rng.choice(_FACT_BLOCK, self._k, replace=False))
      self._last = (block, pos)
    return pos

  def __getitem__(self, index: int) -> tuple[int, int]:
    block, offset = divmod(int(index), _FACT_BLOCK)
    pos = self._positions(block)
    before = int(np.searchsorted(pos, offset))  # fact positions of this block before `offset`
    if before < self._k and pos[before] == offset:
      return 1, block * self._k + before
    return 0, block * (_FACT_BLOCK - self._k) + offset - before


def _fact_seed(seed: int, language: str, process_index: int) -> int:
  return zlib.crc32(f'facts/{seed}/{language}/{process_index}'.encode())


class _Mix(grain.IterDataset):
  """Interleaves per-language row streams so realised shares follow `weights`."""

  def __init__(self, parents: list[grain.IterDataset], weights: list[float]):
    super().__init__(parents)
    self._weights = weights

  def __iter__(self) -> grain.DatasetIterator:
    return _MixIterator([p.__iter__() for p in self._parents], self._weights)


class _MixIterator(grain.DatasetIterator):

  def __init__(self, parents: list[grain.DatasetIterator], weights: list[float]):
    super().__init__(parents)
    self._weights = list(weights)
    self._counts = [0] * len(parents)

  def __next__(self) -> dict[str, np.ndarray]:
    total = sum(self._counts) + 1
    deficits = [w * total - c if w > 0 else -np.inf for w, c in zip(self._weights,
                                                                     self._counts)]
    i = int(np.argmax(deficits))
    row = next(self._parents[i])
    self._counts[i] += 1
    return {**row, 'lang': np.int32(i)}

  def get_state(self) -> dict[str, Any]:
    return {'weights': self._weights, 'counts': list(self._counts),
            'languages': [p.get_state() for p in self._parents]}

  def set_state(self, state: dict[str, Any]) -> None:
    if len(state['languages']) != len(self._parents):
      raise DataError(f'the checkpointed data state has {len(state["languages"])} languages, '
                        f'this run has {len(self._parents)}; data.languages cannot change on '
                        'resume (start a new run with train.init_from instead)')
    for parent, s in zip(self._parents, state['languages']):
      parent.set_state(s)
    same = np.allclose(state['weights'], self._weights, rtol=0, atol=1e-12)
    self._counts = list(state['counts']) if same else [0] * len(self._parents)


def _to_contract(rows: dict[str, np.ndarray], masked: bool = False) -> dict[str, np.ndarray]:
  """Packed rows of seq_len + 1 tokens -> the batch contract's [B, seq_len] arrays (with
  target_mask when `masked`: the tokenizer's id 0 is a token, data/batch.py)."""
  tok, seg = rows['tokens'], rows['tokens_segment_ids']
  same_doc = (seg[:, 1:] == seg[:, :-1]) & (seg[:, :-1] > 0)
  lang = np.broadcast_to(rows['lang'][:, None], seg[:, :-1].shape)
  out = {'tokens': tok[:, :-1],
         'targets': np.where(same_doc, tok[:, 1:], PAD_ID).astype(np.int32),
         'segment_ids': seg[:, :-1], 'positions': rows['tokens_positions'][:, :-1],
         'lang_ids': np.where(seg[:, :-1] > 0, lang, NO_LANG).astype(np.int32)}
  if masked:
    out[TARGET_MASK] = same_doc.astype(np.int32)
  return out


class CorpusSource:
  """Batches from the corpus under a MixtureSpec; the data source of `data.source='corpus'`."""

  def __init__(self, corpus_dir: str, tokenizer_dir: str, languages: tuple[str, ...],
               spec: spec_lib.MixtureSpec, batch_size: int, seq_len: int, seed: int,
               process_index: int = 0, process_count: int = 1, read_threads: int = 2,
               prefetch: int = 4, split: str = 'train', vocab_size: int | None = None,
               facts_rate: float = 0.0):
    if batch_size % process_count:
      raise DataError(f'train.batch_size={batch_size} must divide by the {process_count} '
                        'processes')
    if not 0.0 <= facts_rate < 1.0:
      raise DataError(f'data.facts_rate must be in [0, 1), got {facts_rate}')
    manifest = manifest_lib.load(corpus_dir)
    missing = [lang for lang in languages if lang not in manifest['languages']]
    if missing:
      raise DataError(f'data.languages names {missing}, which the corpus at {corpus_dir} '
                        f'does not hold; it has {sorted(manifest["languages"])}')
    tokenizer, info = tok_lib.load(tokenizer_dir, manifest)
    if vocab_size is not None and tokenizer.vocab_size > vocab_size:
      raise DataError(f'the tokenizer at {tokenizer_dir} has {tokenizer.vocab_size} pieces, '
                      f'more than model.vocab_size={vocab_size}')
    weights = spec.vector(languages)
    for lang, w in zip(languages, weights):
      if w > 0 and not manifest['languages'][lang]['files'][split]:
        raise DataError(f'{lang} has weight {w:.3f} but no {split} files in {corpus_dir}')
    self.languages = tuple(languages)
    self.spec = spec
    self.info = {'corpus_dir': os.path.abspath(corpus_dir),
                 'corpus_hash': manifest['content_hash'],
                 'tokenizer_dir': os.path.abspath(tokenizer_dir),
                 'tokenizer_sha256': info['model_sha256'],
                 **({'tokenizer_kind': tokenizer.kind} if tokenizer.kind != 'sentencepiece' else {}),
                 'mixture': spec.weights,
                 'mixture_provenance': spec.provenance}
    self.planted = planted_maps(manifest, tokenizer, languages)
    # Only planted languages the run draws need their ids in the model (a primary run before
    # its vocabulary is grown lists them with weight 0).
    drawn = [p for name, (p, _) in self.planted.items() if weights[languages.index(name)] > 0]
    need = max([planted.vocab_size(tokenizer.vocab_size, p.index + 1) for p in drawn], default=0)
    if vocab_size is not None and need > vocab_size:
      raise DataError(f'the planted languages {sorted(self.planted)} need ids up to {need} '
                      f'({tokenizer.vocab_size} pieces per range), more than '
                      f'model.vocab_size={vocab_size}; raise model.vocab_size to {need}')
    # Planted knowledge: the taught facts enter their language's train stream, whatever its
    # weight (so the stream, and a checkpoint's place in it, does not depend on the mixture); a
    # weight of 0 (a continual run on another language) never draws it.
    recorded = manifest.get('facts')
    self.facts, self.facts_language = None, None
    if (recorded and recorded['taught'] and split == 'train' and facts_rate > 0
        and recorded['language'] in languages):
      self.facts = manifest_lib.recorded_facts(manifest)  # the record, not today's generator
      self.facts_language = recorded['language']
      if weights[languages.index(self.facts_language)] > 0:
        self.info['facts'] = {'seed': self.facts.seed, 'count': self.facts.count,
                              'language': self.facts_language, 'rate': facts_rate,
                              'share': _FactSlots(facts_rate, 0).share,
                              'variants': FACT_VARIANTS}
    streams = []
    for i, lang in enumerate(languages):
      paths = [os.path.join(corpus_dir, rel) for rel in manifest['languages'][lang]['shards'][split]]
      ds = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(paths) if paths else [])
      ds = ds[process_index::process_count].seed(seed * 1000 + i).shuffle().repeat(None)
      if lang == self.facts_language:
        ds = self._with_facts(ds, lang, facts_rate, _fact_seed(seed, lang, process_index))
      it = ds.map(_Tokenize(tokenizer, self.planted.get(lang))).to_iter_dataset(
          grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=64))
      streams.append(grain.experimental.ConcatThenSplitIterDataset(
          it, length_struct={'tokens': seq_len + 1}))
    rows = _Mix(streams, weights)
    ds = rows.batch(batch_size // process_count, drop_remainder=True).map(
        functools.partial(_to_contract, masked=zero_is_token(tokenizer)))
    if prefetch:
      ds = grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=prefetch)
    self._it = ds.__iter__()
    atexit.register(self.close)

  def _with_facts(self, shards: grain.MapDataset, lang: str, rate: float,
                  seed: int) -> grain.MapDataset:
    """`shards` with fact documents at `rate` of the positions (_FactSlots): every taught fact
    in FACT_VARIANTS variants, as records like the shards' ones, reshuffled every pass."""
    records = [json.dumps({'text': text, 'source': 'facts', 'path': f'facts/{k}'}).encode()
               for k, text in enumerate(fact_documents(self.facts, lang))]
    pool = grain.MapDataset.source(records).seed(seed).shuffle().repeat(None)
    return grain.MapDataset.select_from_datasets([shards, pool], _FactSlots(rate, seed))

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return next(self._it)

  def get_state(self) -> dict[str, Any]:
    return self._it.get_state()

  def set_state(self, state: dict[str, Any]) -> None:
    if 'weights' not in state:
      raise DataError('the checkpointed data state is not from the corpus pipeline '
                        '(data.source changed?); start a new run with train.init_from instead')
    self._it.set_state(state)

  def close(self) -> None:
    """Stops the prefetch thread (also done at exit)."""
    if self._it is not None:
      self._it.close()
      self._it = None
