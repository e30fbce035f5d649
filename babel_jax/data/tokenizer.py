"""`--mode tokenizer`: a sentencepiece BPE model for code, trained next to the corpus, or a
Hugging Face tokenizer.json (`tokenizer.hf_json`, e.g. an imported model's hf_tokenizer.json)
counted on it.

Settings keep source text exactly: no normalisation, no dummy prefix, whitespace-only pieces
(indentation), digits split, byte fallback for anything unseen. The one character sentencepiece
cannot round-trip on its own, U+2581 (its space marker), is encoded as its UTF-8 bytes.

Output (renamed into place when complete): <tokenizer_dir>/spm.model (or hf_tokenizer.json, a
copy of the given file: its kind is read from which of the two the directory holds) and
tokenizer.json with the settings, the corpus content hash it was trained on (or counted on),
token counts per language and split, and the result of the round-trip check over every
validation file. In a Hugging Face vocabulary id 0 is a real token, so batches of its text carry
an explicit target_mask (data/batch.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from typing import Any, Iterator

import sentencepiece as spm
import tokenizers

from babel_jax.data import manifest as manifest_lib
from babel_jax.data.batch import PAD_ID
from babel_jax.errors import TokenizerError

MODEL, INFO = 'spm.model', 'tokenizer.json'
HF_MODEL = 'hf_tokenizer.json'  # a Hugging Face tokenizer.json (the name --mode import gives it)
UNK, BOS, EOS = 1, 2, 3  # after the batch contract's PAD_ID 0, which reads as 'no target'
_MARK = '\u2581'
_CHUNK_CHARS = 4096


class Tokenizer:
  """Lossless text <-> ids; picklable (grain workers re-open the model file)."""

  kind = 'sentencepiece'
  zero_is_token = False  # id 0 is PAD_ID: targets of 0 read as 'no target' (data/batch.py)
  bos_id, eos_id = BOS, EOS

  def __init__(self, model_path: str):
    self.model_path = model_path
    self._sp = spm.SentencePieceProcessor(model_file=model_path)
    self._mark_ids = [self._sp.piece_to_id(f'<0x{b:02X}>') for b in _MARK.encode()]

  def __getstate__(self):
    return {'model_path': self.model_path}

  def __setstate__(self, state):
    self.__init__(state['model_path'])

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> list[int]:
    if _MARK not in text:
      return self._sp.encode(text)
    out: list[int] = []
    for i, part in enumerate(text.split(_MARK)):
      if i:
        out += self._mark_ids
      out += self._sp.encode(part) if part else []
    return out

  def encode_batch(self, texts: list[str], num_threads: int = -1) -> list[list[int]]:
    if any(_MARK in t for t in texts):
      return [self.encode(t) for t in texts]
    return self._sp.encode(texts, num_threads=num_threads)

  def decode(self, ids: list[int]) -> str:
    return self._sp.decode(list(ids))

  def pieces(self) -> list[str]:
    """Every piece's text, by id."""
    return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]


_BOS_NAMES = ('<|endoftext|>', '<s>', '<bos>', '<|begin_of_text|>')
_EOS_NAMES = ('<|endoftext|>', '</s>', '<eos>', '<|end_of_text|>')


class HFTokenizer:
  """A Hugging Face tokenizer.json (the `tokenizers` library) with `Tokenizer`'s interface;
  picklable. Text is encoded without special tokens; documents are framed with its own
  BOS / EOS (<|endoftext|> for GPT-2 and Pythia, <s> / </s> for Llama)."""

  kind = 'hf'
  zero_is_token = True  # id 0 is a real token ('!', '<|endoftext|>'): batches carry target_mask

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise TokenizerError(f'no Hugging Face tokenizer file at {path!r}')
    self.path = path
    try:
      self._tk = tokenizers.Tokenizer.from_file(path)
    except Exception as e:  # pylint: disable=broad-except  (the library raises plain Exception)
      raise TokenizerError(f'{path} is not a tokenizer.json the tokenizers library reads: '
                           f'{str(e).splitlines()[0][:200]}') from e
    self.bos_id = self._special(_BOS_NAMES)
    self.eos_id = self._special(_EOS_NAMES)

  def _special(self, names) -> int:
    for name in names:
      i = self._tk.token_to_id(name)
      if i is not None:
        return i
    raise TokenizerError(f'{self.path} has none of the special tokens {list(names)}')

  def __getstate__(self):
    return {'path': self.path}

  def __setstate__(self, state):
    self.__init__(state['path'])

  @property
  def vocab_size(self) -> int:
    return self._tk.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> list[int]:
    return self._tk.encode(text, add_special_tokens=False).ids

  def encode_batch(self, texts: list[str], num_threads: int = -1) -> list[list[int]]:
    del num_threads  # the library parallelises on its own (RAYON_NUM_THREADS)
    return [e.ids for e in self._tk.encode_batch(texts, add_special_tokens=False)]

  def decode(self, ids: list[int]) -> str:
    return self._tk.decode([int(i) for i in ids], skip_special_tokens=False)

  def pieces(self) -> list[str]:
    """Every piece's text, by id (GPT-2's byte-level form: 'Ġ' is a space)."""
    return [self._tk.id_to_token(i) or '' for i in range(self.vocab_size)]


def _chunks(text: str) -> Iterator[str]:
  """Line-aligned pieces short enough for sentencepiece's trainer."""
  buf: list[str] = []
  size = 0
  for line in text.splitlines(keepends=True):
    if size + len(line) > _CHUNK_CHARS and buf:
      yield ''.join(buf)
      buf, size = [], 0
    buf.append(line[:_CHUNK_CHARS])
    size += len(buf[-1])
  if buf:
    yield ''.join(buf)


def _sample(corpus_dir: str, manifest: dict[str, Any], per_language: int) -> Iterator[str]:
  """A language-balanced sample: the first `per_language` bytes of each real language's train
  split (planted languages are the primary's documents again; they are not sampled twice)."""
  for lang in sorted(manifest['languages']):
    if 'planted' in manifest['languages'][lang]:
      continue
    taken = 0
    for text in manifest_lib.read_texts(corpus_dir, manifest, lang, 'train'):
      if taken >= per_language:
        break
      taken += len(text.encode())
      yield from _chunks(text)


def settings_dict(c, vocab_size: int) -> dict[str, Any]:
  return {'vocab_size': vocab_size, 'model_type': 'bpe', 'byte_fallback': True,
          'normalization_rule_name': 'identity', 'remove_extra_whitespaces': False,
          'add_dummy_prefix': False, 'split_digits': True, 'allow_whitespace_only_pieces': True,
          'character_coverage': c.character_coverage, 'max_sentencepiece_length': c.max_piece_length,
          'sample_bytes_per_language': c.sample_bytes_per_language,
          'pad_id': PAD_ID, 'unk_id': UNK, 'bos_id': BOS, 'eos_id': EOS}


def train(c, vocab_size: int, corpus_dir: str, out_dir: str) -> dict[str, Any]:
  """Trains (or reuses) the tokenizer for corpus_dir; returns the contents of tokenizer.json."""
  manifest = manifest_lib.load(corpus_dir)
  settings = settings_dict(c, vocab_size)
  info_path = os.path.join(out_dir, INFO)
  if os.path.exists(info_path):
    info = load_info(out_dir)
    if info['settings'] == settings and info['corpus_hash'] == manifest['content_hash']:
      print(f'tokenizer: {out_dir} is up to date, reusing it', flush=True)
      return info
    raise TokenizerError(f'{out_dir} holds a tokenizer with other settings or for another '
                         'corpus; set data.tokenizer_dir elsewhere or delete it')
  t0 = time.time()
  model = io.BytesIO()
  trainer_args = {k: v for k, v in settings.items() if k != 'sample_bytes_per_language'}
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=_sample(corpus_dir, manifest, c.sample_bytes_per_language),
        model_writer=model, max_sentence_length=4 * _CHUNK_CHARS + 16,
        shuffle_input_sentence=False, num_threads=os.cpu_count() or 1, minloglevel=2,
        **trainer_args)
  except RuntimeError as e:
    raise TokenizerError(
        f'sentencepiece could not train a {vocab_size}-piece vocabulary on {corpus_dir} (byte '
        f'fallback alone needs 256 pieces plus 4 specials plus the sample\'s characters; raise '
        f'tokenizer.vocab_size / model.vocab_size or lower tokenizer.character_coverage): '
        f'{str(e).splitlines()[0][-200:]}') from e
  tmp = f'{out_dir}.partial.{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  with open(os.path.join(tmp, MODEL), 'wb') as f:
    f.write(model.getvalue())
  print(f'tokenizer: trained {vocab_size} pieces in {time.time() - t0:.0f}s; counting tokens '
        'and checking the round trip on the validation split', flush=True)
  return _finish(Tokenizer(os.path.join(tmp, MODEL)), tmp, out_dir, corpus_dir, manifest,
                 settings, hashlib.sha256(model.getvalue()).hexdigest(), t0)


def _finish(tok, tmp: str, out_dir: str, corpus_dir: str, manifest: dict[str, Any],
            settings: dict[str, Any], sha: str, t0: float) -> dict[str, Any]:
  """Counts `tok`'s tokens on the corpus and checks its round trip, writes the info file into
  `tmp` (which holds the model) and renames `tmp` to `out_dir`; a failed round trip raises and
  leaves `tmp` for inspection."""
  tokens, checked, failures = _count(tok, corpus_dir, manifest)
  info = {'settings': settings, 'corpus_hash': manifest['content_hash'],
          'corpus_dir': os.path.abspath(corpus_dir), 'model_sha256': sha,
          'tokens': tokens, 'roundtrip': {'files': checked, 'failures': failures[:20],
                                          'num_failures': len(failures)},
          'train_seconds': round(time.time() - t0, 1)}
  with open(os.path.join(tmp, INFO), 'w') as f:
    json.dump(info, f, indent=2, sort_keys=True)
  if failures:
    raise TokenizerError(f'tokenizer round trip failed on {len(failures)} of {checked} '
                         f'validation files, e.g. {failures[0]}; model left in {tmp}')
  os.rename(tmp, out_dir)
  print(summary(info), flush=True)
  return info


def _count(tok, corpus_dir: str, manifest: dict[str, Any]
           ) -> tuple[dict[str, dict[str, int]], int, list[str]]:
  """Token counts per language and split, and the validation files that do not round-trip."""
  tokens: dict[str, dict[str, int]] = {}
  failures: list[str] = []
  checked = 0
  real = [lang for lang, i in manifest['languages'].items() if 'planted' not in i]
  for lang in sorted(real):
    tokens[lang] = {}
    for split in manifest_lib.SPLITS:
      texts = list(manifest_lib.read_texts(corpus_dir, manifest, lang, split))
      ids = tok.encode_batch(texts)
      tokens[lang][split] = sum(map(len, ids))
      if split == 'validation':
        for text, row in zip(texts, ids):
          checked += 1
          if tok.decode(row) != text:
            failures.append(f'{lang}: {text[:60]!r}')
  for lang, i in manifest['languages'].items():
    if 'planted' in i:  # the same documents, one planted id per real id
      tokens[lang] = dict(tokens[i['planted']['of']])
  return tokens, checked, failures


def use_hf(hf_json: str, vocab_size: int, corpus_dir: str, out_dir: str) -> dict[str, Any]:
  """`--mode tokenizer` with tokenizer.hf_json: copies a Hugging Face tokenizer.json into
  out_dir (as hf_tokenizer.json) with the info file of its counts on the corpus; reused when
  out_dir already holds the same file for the same corpus."""
  if not os.path.isfile(hf_json):
    raise TokenizerError(f'tokenizer.hf_json={hf_json!r}: no such file')
  tok = HFTokenizer(hf_json)
  if tok.vocab_size > vocab_size:  # named before the corpus is read
    raise TokenizerError(f'the tokenizer {hf_json} has {tok.vocab_size} tokens, more than '
                         f'model.vocab_size={vocab_size}')
  manifest = manifest_lib.load(corpus_dir)
  with open(hf_json, 'rb') as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  settings = {'kind': 'hf', 'source': os.path.abspath(hf_json)}
  if os.path.exists(os.path.join(out_dir, INFO)):
    info = load_info(out_dir)
    if info.get('model_sha256') == sha and info['corpus_hash'] == manifest['content_hash']:
      print(f'tokenizer: {out_dir} is up to date, reusing it', flush=True)
      return info
    raise TokenizerError(f'{out_dir} holds a tokenizer with other settings or for another '
                         'corpus; set data.tokenizer_dir elsewhere or delete it')
  t0 = time.time()
  tmp = f'{out_dir}.partial.{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  shutil.copyfile(hf_json, os.path.join(tmp, HF_MODEL))
  return _finish(HFTokenizer(os.path.join(tmp, HF_MODEL)), tmp, out_dir, corpus_dir, manifest,
                 {**settings, 'vocab_size': tok.vocab_size}, sha, t0)


def summary(info: dict[str, Any]) -> str:
  rows = [f'{"language":<12}{"train tokens":>14}{"val tokens":>12}']
  for lang, t in sorted(info['tokens'].items()):
    rows.append(f'{lang:<12}{t["train"]:>14,}{t["validation"]:>12,}')
  rt = info['roundtrip']
  rows.append(f'vocab {info["settings"]["vocab_size"]}; lossless round trip on '
              f'{rt["files"] - rt["num_failures"]}/{rt["files"]} validation files')
  return '\n'.join(rows)


def model_file(tokenizer_dir: str) -> str | None:
  """The tokenizer file the directory holds: spm.model, else hf_tokenizer.json; None if neither."""
  for name in (MODEL, HF_MODEL):
    if os.path.isfile(os.path.join(tokenizer_dir, name)):
      return os.path.join(tokenizer_dir, name)
  return None


def load_info(tokenizer_dir: str) -> dict[str, Any]:
  path = os.path.join(tokenizer_dir, INFO)
  if not os.path.isfile(path) or model_file(tokenizer_dir) is None:
    raise TokenizerError(f'no tokenizer at {tokenizer_dir!r}; train one with --mode tokenizer '
                         '(or give it a tokenizer.json with --config.tokenizer.hf_json)')
  with open(path) as f:
    return json.load(f)


def load(tokenizer_dir: str, manifest: dict[str, Any]
         ) -> tuple[Tokenizer | HFTokenizer, dict[str, Any]]:
  """The tokenizer for this corpus; fails if it was trained on another corpus."""
  info = load_info(tokenizer_dir)
  if info['corpus_hash'] != manifest['content_hash']:
    raise TokenizerError(
        f'tokenizer {tokenizer_dir!r} was trained on corpus {info["corpus_hash"][:12]}, but the '
        f'manifest has content hash {manifest["content_hash"][:12]}; retrain with --mode tokenizer')
  path = model_file(tokenizer_dir)
  with open(path, 'rb') as f:
    if hashlib.sha256(f.read()).hexdigest() != info['model_sha256']:
      raise TokenizerError(f'{path} does not match the hash in {INFO}')
  if path.endswith(HF_MODEL):
    return HFTokenizer(path), info
  return Tokenizer(path), info
