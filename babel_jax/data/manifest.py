"""A built corpus, read: its manifest and shards (the layout data/corpus.py writes), for the
tokenizer, the pipeline, probes and evaluation, none of which needs the builder.

  <corpus_dir>/manifest.json                          languages, files, tokens, planted, facts
  <corpus_dir>/<language>/<split>-<i>.array_record   records: JSON {"text", "source", "path"}
"""

from __future__ import annotations

import json
import os
from typing import Any

from array_record.python import array_record_module as array_record

from babel_jax.data import facts as facts_lib
from babel_jax.errors import CorpusError

SPLITS = ('train', 'validation')
MANIFEST = 'manifest.json'


def recorded_facts(manifest: dict[str, Any]):
  """The FactSet the manifest records (facts.FactSet), or None for a corpus without facts."""
  entry = manifest.get('facts')
  if not entry:
    return None
  return facts_lib.FactSet.from_json(entry)


def load(corpus_dir: str) -> dict[str, Any]:
  """The manifest of the corpus at corpus_dir, its shards checked to exist."""
  path = os.path.join(corpus_dir, MANIFEST)
  if not os.path.isfile(path):
    raise CorpusError(f'no corpus at {corpus_dir!r} ({MANIFEST} missing); build it with '
                      '--mode corpus')
  with open(path) as f:
    manifest = json.load(f)
  for lang, info in manifest['languages'].items():
    for split in SPLITS:
      for rel in info['shards'][split]:
        if not os.path.isfile(os.path.join(corpus_dir, rel)):
          raise CorpusError(f'{path} names shard {rel!r} for {lang}/{split}, which is missing')
  return manifest


def read_texts(corpus_dir: str, manifest: dict[str, Any], lang: str, split: str):
  """Yields the documents (str) of one language and split, in shard order."""
  for rel in manifest['languages'][lang]['shards'][split]:
    reader = array_record.ArrayRecordReader(os.path.join(corpus_dir, rel))
    try:
      for i in range(reader.num_records()):
        yield json.loads(reader.read([i])[0])['text']
    finally:
      reader.close()


def summary(manifest: dict[str, Any]) -> str:
  method = manifest.get('token_count', {}).get('method', 'estimate')
  rows = [f'{"language":<12}{"train files":>12}{"val files":>10}{"MB":>9}{"lex tokens":>13}'
          f'{"tokens (" + method + ")":>24}']
  for lang, info in sorted(manifest['languages'].items()):
    if 'planted' in info:
      continue
    files, b, lex = info['files'], info['bytes'], info['lexical_tokens']
    tok = info.get('tokens', {'train': 0, 'validation': 0})
    rows.append(f'{lang:<12}{files["train"]:>12}{files["validation"]:>10}'
                f'{(b["train"] + b["validation"]) / 1e6:>9.2f}'
                f'{lex["train"] + lex["validation"]:>13,}{tok["train"] + tok["validation"]:>24,}')
  dropped = ', '.join(f'{k} {v}' for k, v in manifest['filtered'].items() if v)
  made = [f'{n} ({i["planted"]["kind"]} of {i["planted"]["of"]}, seed {i["planted"]["seed"]})'
          for n, i in sorted(manifest['languages'].items()) if 'planted' in i]
  rows += [f'planted: {", ".join(made)}'] if made else []
  if 'facts' in manifest:
    f = manifest['facts']
    rows.append(f'facts: {f["count"]} taught (and {len(f["untaught"])} untaught twins), seed '
                f'{f["seed"]}, in {f["placement"]}')
  return '\n'.join(rows + [f'files read {manifest["files_read"]}; dropped: {dropped}',
                           f'content hash {manifest["content_hash"][:16]}'])
