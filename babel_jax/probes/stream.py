"""`--mode probe`: stream a run's checkpoints through the jitted probes, one result per step.

Parameters only are restored (no optimizer state), onto the probing job's mesh, by a background
thread: restoring checkpoint k+1 overlaps with probing checkpoint k. The thread reads from disk
into host memory without holding the launch lock and takes it only to place the arrays on the
devices, so the probes' launches never wait for disk reads. Every checkpoint goes through
the same compiled functions. Results land in <workdir>/probes/<step>.json (atomically); steps
already there are skipped, so the walk resumes after an interruption and can follow a run that
is still training (`--follow`). Partial or incompatible checkpoints are skipped with a warning.
Every step's curves also go to TensorBoard (<workdir>/probes/tb; planted knowledge as
knowledge_transferred/<lang>, untaught minus taught body loss). The instruments: prober.py; the
record of a step: result.py. The aligned lens reports only the planted languages the run trains on
(weight > 0 in its mixture), so one Prober can serve every run of a study.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from typing import Any

import jax
import numpy as np

from babel_jax import config as config_lib
from babel_jax.errors import RunError
from babel_jax.mixture import spec as spec_lib
from babel_jax.probes.prober import Prober
from babel_jax.probes.result import ProbeResult
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import metrics as metrics_lib


def _partial_saves(ckpt_dir: str, min_age_s: float = 0.0) -> list[str]:
  """Unfinished saves; with min_age_s, only those untouched that long (not still being written)."""
  if not os.path.isdir(ckpt_dir):
    return []
  now = time.time()
  out = []
  for name in sorted(os.listdir(ckpt_dir)):
    if 'orbax-checkpoint-tmp' in name:
      try:
        age = now - os.path.getmtime(os.path.join(ckpt_dir, name))
      except OSError:  # finished and renamed meanwhile
        continue
      if age >= min_age_s:
        out.append(name)
  return out


class _Board:
  """Each probed step's curves as TensorBoard scalars under probes/tb, so runs overlay there."""

  def __init__(self, run: RunDir):
    self._w = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter
      self._w = SummaryWriter(run.probes_tb_dir)

  def write(self, r: ProbeResult) -> None:
    if self._w is None:
      return
    add = lambda tag, v: self._w.add_scalar(tag, float(v), r.step)  # noqa: E731
    for lang, v in r.loss.items():
      add(f'heldout_loss/{lang}', v)
    for lang, v in r.neurons.transferring.items():
      add(f'transferring_neurons/{lang}', v.total)
    for lang, reading in r.lens.items():
      for n, share in enumerate(reading.primary_share):
        add(f'lens_primary_share/{lang}/layer{n}', share)
    for lang, aligned in r.aligned_lens.items():
      for n, (share, block) in enumerate(zip(aligned.primary_share,
                                             aligned.primary_block_share)):
        add(f'aligned_lens_primary_share/{lang}/layer{n}', share)
        add(f'aligned_lens_primary_block/{lang}/layer{n}', block)
    for lang, v in r.solution_loss.items():
      add(f'solution_loss/{lang}', v.loss)
    for lang, v in r.knowledge.items():
      add(f'knowledge_transferred/{lang}', v.transferred)
    self._w.flush()

  def close(self) -> None:
    if self._w is not None:
      self._w.close()


def _warn_partial(ckpt_dir: str, follow: bool, warned: set[str]) -> None:
  # While following a live run, a fresh tmp folder is a save in flight, not a partial one.
  for name in _partial_saves(ckpt_dir, min_age_s=300.0 if follow else 0.0):
    if name not in warned:
      warned.add(name)
      metrics_lib.log(f'warning: skipping partial checkpoint {ckpt_dir}/{name} (a save that '
                      'did not finish)')


def _probe_steps(todo: list[int], restore, prober: Prober, run: RunDir, board: _Board,
                 stats: dict[str, list], trained: tuple[str, ...]) -> None:
  """Probes `todo` in order while a background thread restores the next checkpoint; `trained`:
  the run's languages with weight (see Prober.probe)."""
  pool = concurrent.futures.ThreadPoolExecutor(1)
  pending = pool.submit(restore, todo[0])
  for i, step in enumerate(todo):
    t = time.perf_counter()
    try:
      params, restore_s = pending.result()
    except Exception as e:  # a corrupt, partial or incompatible checkpoint: skip it
      params = None
      stats['skipped'].append(step)
      metrics_lib.log(f'warning: skipping checkpoint {run.checkpoints}/{step}: '
                      f'{type(e).__name__}: {str(e).splitlines()[0][:300]}')
    wait_s = time.perf_counter() - t
    if i + 1 < len(todo):
      pending = pool.submit(restore, todo[i + 1])
    if params is None:
      continue
    t = time.perf_counter()
    result = prober.probe(params, step, trained)
    probe_s = time.perf_counter() - t
    run.write_probe(result)
    board.write(result)
    for key, value in (('probed', step), ('restore_s', restore_s), ('wait_s', wait_s),
                       ('probe_s', probe_s)):
      stats[key].append(value)
    metrics_lib.log(_line(result, probe_s, restore_s, wait_s, prober.primary))
  pool.shutdown()


def walk(cfg, workdir: str, follow: bool = False, prober: Prober | None = None
         ) -> dict[str, Any]:
  """Probes every selected checkpoint of the run in workdir that has no result yet. A `prober`
  built for the same model, languages and held-out sample can be shared by many runs."""
  cfg = config_lib.validate(cfg)
  run = RunDir(workdir)
  if not (os.path.isdir(run.checkpoints) and
          (follow or ckpt_lib.complete_steps(run.checkpoints))):
    raise RunError(f'no checkpoints to probe in {run.checkpoints}; train a run there first')
  ckpt_lib.check_same_model(run.model_config(), cfg.model.to_dict(), workdir)
  if prober is None:
    prober = Prober(cfg, workdir, runtime_lib.build(cfg), threading.Lock())
  lock = prober.lock
  manager = ckpt_lib.make_manager(run.checkpoints, read_only=True)
  warned: set[str] = set()
  board = _Board(run)
  trained = trained_languages(cfg)
  stats = {'probed': [], 'skipped': [], 'restore_s': [], 'wait_s': [], 'probe_s': []}
  last_new = time.time()
  final = run.final_step()

  def restore(step):
    t = time.perf_counter()
    if jax.process_count() == 1:
      # Read from disk without the lock (the slow part, overlapping the probes' launches), then
      # place onto the devices under it. Several processes keep orbax's sharded read, which
      # reads only each host's shards.
      host = ckpt_lib.read_params(manager, step, prober.abstract_params)
      with lock:
        params = ckpt_lib.place_params(host, prober.abstract_params)
    else:
      with lock:
        params = ckpt_lib.restore_params(manager, step, prober.abstract_params)
    jax.block_until_ready(params)
    return params, time.perf_counter() - t

  while True:
    _warn_partial(run.checkpoints, follow, warned)
    manager.reload()
    available = list(manager.all_steps())
    todo = [s for s in ckpt_lib.select_steps(cfg.probe.steps, available)
            if not run.probed(s) and s not in stats['skipped']]
    if todo:
      last_new = time.time()
      metrics_lib.log(f'probing {len(todo)} checkpoints of {workdir}: {todo[:8]}'
                      f'{" ..." if len(todo) > 8 else ""}')
      _probe_steps(todo, restore, prober, run, board, stats, trained)
    if not follow:
      break
    if final is not None and final in available and not todo:
      metrics_lib.log(f'the run reached its final step {final}; stop following')
      break
    if time.time() - last_new > cfg.probe.follow_timeout_s:
      metrics_lib.log(f'no new checkpoint for {cfg.probe.follow_timeout_s:.0f}s; stop following')
      break
    time.sleep(cfg.probe.follow_poll_s)
  board.close()
  manager.close()
  if not stats['probed'] and not run.probe_results():
    raise RunError(f'no checkpoint of {run.checkpoints} was probed: ' + (
        f'none of {available} could be restored' if stats['skipped'] else
        f'probe.steps={cfg.probe.steps!r} selects none of {available}'))
  return stats


def trained_languages(cfg) -> tuple[str, ...]:
  """The run's languages with a positive weight in its mixture (data.mixture, data.target_tokens
  or data.weights; uniform without any)."""
  return tuple(lang for lang, w in spec_lib.from_config(cfg).weights.items() if w > 0)


def _line(result: ProbeResult, probe_s, restore_s, wait_s, primary) -> str:
  loss = ' '.join(f'{k}={v:.3f}' for k, v in result.loss.items())
  transfer = ' '.join(f'{k}={v.total}' for k, v in result.neurons.transferring.items())
  text = f'probe step {result.step}: loss [{loss}]'
  if transfer:
    text += f' transferring neurons [{transfer}]'
  if result.lens:
    share = ' '.join(f'{k}={np.mean(v.primary_top1):.2f}/{np.mean(v.target_top1):.2f}'
                     for k, v in result.lens.items())
    text += f' lens {primary}/L top1 [{share}]'
  if result.aligned_lens:
    middle = lambda per_layer: per_layer[len(per_layer) // 2]  # noqa: E731
    share = ' '.join(f'{k}={middle(v.primary_share):.2f} (block '
                     f'{middle(v.primary_block_share):.2f})'
                     for k, v in result.aligned_lens.items())
    text += f' aligned lens {primary} share within blocks (middle layer) [{share}]'
  if result.solution_loss:
    text += ' solution loss [' + ' '.join(f'{k}={v.loss:.3f}'
                                          for k, v in result.solution_loss.items()) + ']'
  if result.knowledge:
    text += ' knowledge [' + ' '.join(f'{k}={v.transferred:+.3f}'
                                      for k, v in result.knowledge.items()) + ']'
  return text + f' ({probe_s:.1f}s probe, {restore_s:.1f}s restore, {wait_s:.2f}s waited)'
