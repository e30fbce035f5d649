"""`--mode probe`: a run's checkpoints through the same jitted probes, one result per step.

The checkpoint walk (runtime/walk.py) restores parameters only, onto the probing job's mesh, the
next checkpoint while this one is probed; partial or broken ones are skipped with a warning, and
`--follow` follows a run that is still training. Results land in <workdir>/probes/<step>.json
(atomically); steps already there are skipped, so the walk resumes after an interruption. Every
step's curves also go to TensorBoard (<workdir>/probes/tb; planted knowledge as
knowledge_transferred/<lang>, untaught minus taught body loss). The instruments: prober.py; the
record of a step: result.py. The aligned lens reports only the planted languages the run trains on
(weight > 0 in its mixture), so one Prober can serve every run of a study.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import jax
import numpy as np
from tensorboardX import SummaryWriter

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.data import mixture_spec as spec_lib
from babel_jax.errors import RunError
from babel_jax.probes import result as result_lib
from babel_jax.probes.prober import Prober
from babel_jax.probes.result import ProbeResult
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import walk as walk_lib
from babel_jax.runtime.rundir import RunDir


class _Board:
  """Each probed step's curves as TensorBoard scalars under probes/tb, so runs overlay there."""

  def __init__(self, run: RunDir):
    self._w = SummaryWriter(run.probes_tb_dir) if jax.process_index() == 0 else None

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


def walk(cfg, workdir: str, follow: bool = False, prober: Prober | None = None
         ) -> dict[str, Any]:
  """Probes every selected checkpoint of the run in workdir that has no result yet. A `prober`
  built for the same model, languages and held-out sample can be shared by many runs."""
  cfg = config_lib.validate(cfg)
  run = RunDir(workdir)
  checkpoints = walk_lib.Walk(run, cfg.model.to_dict(), 'probe', follow)
  if prober is None:
    prober = Prober(cfg, workdir, runtime_lib.build_runtime(cfg), threading.Lock())
  board = _Board(run)
  trained = trained_languages(cfg)
  stats = {'probed': [], 'skipped': checkpoints.skipped, 'restore_s': [], 'wait_s': [],
           'probe_s': []}
  for r in checkpoints.restored(prober.abstract_params, cfg.probe.steps, run.probed,
                                'probe.steps', prober.lock, poll_s=cfg.probe.follow_poll_s,
                                timeout_s=cfg.probe.follow_timeout_s):
    t = time.perf_counter()
    result = prober.probe(r.params, r.step, trained)
    probe_s = time.perf_counter() - t
    result_lib.save(run, result)
    board.write(result)
    for key, value in (('probed', r.step), ('restore_s', r.restore_s), ('wait_s', r.wait_s),
                       ('probe_s', probe_s)):
      stats[key].append(value)
    io.log(_line(result, probe_s, r.restore_s, r.wait_s, prober.primary))
  board.close()
  available = checkpoints.available
  if not stats['probed'] and not run.probe_steps():
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
