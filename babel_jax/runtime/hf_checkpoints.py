"""`--mode import` / `--mode export`: Hugging Face models <-> a run directory's Orbax checkpoints.

Import reads a model directory (a local path, or `org/name[@revision]` from the Hub through
huggingface_hub, which honours its cache and HF_HUB_OFFLINE) and writes its parameters as the
checkpoint of a step; a list or range of revisions (Pythia's `step0` ... `step143000`) writes a
checkpoint series that the probes walk like any run. The run's hf_import.json records each
revision's step, files and sha256, and reports revisions whose weights are identical. Export
writes a run's checkpoint as a directory transformers loads (GPT-2 for native runs, the source
family for imported ones).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax import model as model_lib
from babel_jax.errors import ConfigError
from babel_jax.model import hf
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory
from babel_jax.runtime.rundir import RunDir

MANIFEST = 'hf_import.json'
TOKENIZER = 'hf_tokenizer.json'  # the source's tokenizer.json, kept beside the checkpoints
_FILES = ['config.json', '*.safetensors', hf.INDEX, 'tokenizer.json']


def revisions(spec: str) -> list[str | None]:
  """'' -> [None] (the default branch); 'a,b' -> ['a', 'b']; 'stepA:stepB:S' -> every S steps."""
  if not spec:
    return [None]
  m = re.fullmatch(r'step(\d+):step(\d+):(\d+)', spec)
  if m:
    lo, hi, stride = (int(x) for x in m.groups())
    if stride < 1 or hi < lo:
      raise ConfigError(f'--revisions={spec!r}: expected stepA:stepB:S with A <= B and S >= 1')
    return [f'step{s}' for s in range(lo, hi + 1, stride)]
  return [r.strip() for r in spec.split(',') if r.strip()]


def step_of(revision: str | None, index: int) -> int:
  """The checkpoint step of a revision: N for 'stepN' (Pythia, stanford-crfm), else its index."""
  m = re.fullmatch(r'(?:.*[-_])?step[-_]?(\d+)(?:[-_].*)?', revision or '')
  return int(m.group(1)) if m else index


def resolve(source: str, revision: str | None) -> str:
  """A local model directory for `source` at `revision` (downloaded or from the Hub's cache)."""
  if os.path.isdir(source):
    if revision:
      raise ConfigError(f'--hf={source} is a local directory; it has no revision {revision!r}')
    return source
  repo, _, pinned = source.partition('@')
  if revision and pinned:
    raise ConfigError(f'--hf={source} pins a revision; drop it or --revisions')
  if not re.fullmatch(r'[\w.-]+/[\w.-]+', repo):
    raise ConfigError(f'--hf={source}: not a directory, nor a Hub repository "org/name[@rev]"')
  import huggingface_hub  # pylint: disable=g-import-not-at-top  (only imports need the Hub)
  from huggingface_hub import errors  # pylint: disable=g-import-not-at-top
  rev = revision or pinned or None
  try:
    return huggingface_hub.snapshot_download(repo, revision=rev, allow_patterns=_FILES)
  except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as e:
    raise ConfigError(f'{repo}@{rev or "main"} is not in the Hub cache and the Hub cannot be '
                      f'reached (offline: {huggingface_hub.constants.HF_HUB_OFFLINE}); '
                      'download it where there is network first') from e
  except errors.RevisionNotFoundError as e:
    raise ConfigError(f'{repo}: revision {rev!r} not found') from e
  except errors.RepositoryNotFoundError as e:
    raise ConfigError(f'{repo}: no such repository (or it needs a token)') from e


def weights_sha256(params) -> str:
  """One hash of every parameter's bytes: equal hashes mean identical weights."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def _with_model(cfg, fields: dict[str, Any]):
  """The config with the imported architecture (the user's dtype, layout and sharding kept)."""
  cfg = config_lib.validate(cfg)
  return config_lib.replace(cfg, model=fields, **{
      'data.seq_len': min(cfg.data.seq_len, fields['max_len']), 'tokenizer.vocab_size': 0})


def import_run(cfg, workdir: str, source: str, spec: str = '') -> dict[str, Any]:
  """Writes each revision of `source` as a checkpoint of the run at `workdir`; resumable."""
  run = RunDir(workdir)
  run.ensure_writable()
  manifest_path = os.path.join(workdir, MANIFEST)
  manifest = io.read_json(manifest_path) if os.path.exists(manifest_path) else {
      'source': source, 'revisions': []}
  if manifest['source'] != source:
    raise ConfigError(f'{workdir} holds an import of {manifest["source"]}, not {source}')
  done = {r['revision'] for r in manifest['revisions']}
  fields0, manager, rt = None, None, None
  for i, rev in enumerate(revisions(spec)):
    step = step_of(rev, i)
    if rev in done and run.has_checkpoint(step):
      print(f'import: {rev or "default"} -> step {step}: done already', flush=True)
      continue
    path = resolve(source, rev)
    fields, params, info = hf.read_dir(path)
    if fields0 is None:
      fields0, cfg = fields, _with_model(cfg, fields)
      run.write_config(config_lib.to_json(cfg))
      rt = factory.build_runtime(cfg)
      manager = ckpt_lib.make_manager(run.checkpoints, cfg.checkpoint, cfg.train.steps)
      if os.path.isfile(os.path.join(path, 'tokenizer.json')):
        shutil.copyfile(os.path.join(path, 'tokenizer.json'), os.path.join(workdir, TOKENIZER))
    elif fields != fields0:
      raise ConfigError(f'{source}@{rev}: another architecture than the first revision')
    record = {'revision': rev, 'step': step, 'weights_sha256': weights_sha256(params), **info}
    if cfg.model.scan_layers:
      params = hf.scan(params, cfg.model.num_layers)
    placed = ckpt_lib.place_params(params, rt.abstract_params)
    manager.save(step, force=True, args=ocp.args.Composite(
        params=ocp.args.StandardSave(placed),
        meta=ocp.args.JsonSave({'step': step, 'source': source, 'revision': rev})))
    manager.wait_until_finished()
    manifest['revisions'] = [r for r in manifest['revisions'] if r['revision'] != rev] + [record]
    manifest['duplicates'] = _duplicates(manifest['revisions'])
    io.write_json(manifest_path, manifest)
    print(f'import: {rev or "default"} -> step {step} ({info["dtype"]}, '
          f'{model_lib.param_count(params) / 1e6:.2f}M params)', flush=True)
  for a, b in manifest.get('duplicates', []):
    print(f'import: warning: revisions {a} and {b} have identical weights', flush=True)
  return manifest


def _duplicates(records: list[dict[str, Any]]) -> list[list[str]]:
  seen, out = {}, []
  for r in sorted(records, key=lambda r: r['step']):
    first = seen.setdefault(r['weights_sha256'], r['revision'])
    if first != r['revision']:
      out.append([first, r['revision']])
  return out


def export_run(workdir: str, out: str, step: int = -1, dtype: str = 'float32') -> str:
  """The run's checkpoint at `step` (-1: the latest) as a Hugging Face model directory."""
  run = RunDir.containing(workdir)
  cfg = run.typed_config()
  if cfg is None:
    raise ConfigError(f'{workdir}: no config.json (not a run directory)')
  steps = ckpt_lib.complete_steps(run.checkpoints)
  if not steps:
    raise ConfigError(f'{run.checkpoints}: no complete checkpoint to export')
  step = steps[-1] if step < 0 else step
  if step not in steps:
    raise ConfigError(f'{run.checkpoints}: no checkpoint at step {step} (have {steps})')
  rt = factory.build_runtime(cfg)
  manager = ckpt_lib.make_manager(run.checkpoints, read_only=True)
  params = ckpt_lib.read_params(manager, step, rt.abstract_params)
  m = cfg.model.resolved()
  manifest_path = os.path.join(run.path, MANIFEST)
  family = None
  if os.path.exists(manifest_path):
    family = io.read_json(manifest_path)['revisions'][0]['family']
  tok = os.path.join(run.path, TOKENIZER)
  hf.write_dir(out, m, params, family=family, tokenizer_json=tok if os.path.isfile(tok) else None,
               dtype=dtype)
  print(f'export: {run.checkpoints}/{step} -> {out} ({family or hf.family_of(m)}, {dtype})')
  return out
