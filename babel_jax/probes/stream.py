"""`--mode probe`: stream a run's checkpoints through the jitted probes, one result per step.

Parameters only are restored (no optimizer state), onto the probing job's mesh, by a background
thread: restoring checkpoint k+1 overlaps with probing checkpoint k. The thread reads from disk
into host memory without holding the launch lock and takes it only to place the arrays on the
devices, so the probes' launches never wait for disk reads. Every checkpoint goes through
the same compiled functions. Results land in <workdir>/probes/<step>.json (atomically); steps
already there are skipped, so the walk resumes after an interruption and can follow a run that
is still training (`--follow`). Partial or incompatible checkpoints are skipped with a warning.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax.runtime import factory as runtime_lib
from babel_jax.errors import RunError
from babel_jax.mixture.spec import MixtureSpec
from babel_jax.probes import lens as lens_lib
from babel_jax.probes import neurons as neurons_lib
from babel_jax.probes import probe_set as probe_set_lib
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import sharding
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import metrics as metrics_lib


def heldout_batches(cfg, workdir: str) -> list[dict[str, np.ndarray]]:
  """A fixed held-out sample, probe.tokens_per_language tokens of each language."""
  languages = config_lib.languages(cfg)
  per_batch = cfg.probe.batch_size * cfg.data.seq_len
  n = math.ceil(cfg.probe.tokens_per_language * len(languages) / per_batch)
  uniform = MixtureSpec({lang: 1 / len(languages) for lang in languages})
  if cfg.data.source == 'corpus':
    from babel_jax.data.pipeline import CorpusSource
    source = CorpusSource(data_lib.corpus_dir(cfg, workdir), data_lib.tokenizer_dir(cfg, workdir),
                          languages, uniform, cfg.probe.batch_size, cfg.data.seq_len, cfg.seed,
                          split='validation', read_threads=cfg.data.read_threads, prefetch=0)
  else:
    from babel_jax.data.synthetic import SyntheticSource
    source = SyntheticSource(languages, tuple(uniform.vector(languages)), cfg.model.vocab_size,
                             cfg.probe.batch_size, cfg.data.seq_len, cfg.data.mean_doc_len,
                             cfg.seed)
    source.set_state({'index': 10**9})  # same languages, batches training never reaches
  batches = [next(source) for _ in range(n)]
  if hasattr(source, 'close'):
    source.close()
  return batches


class Prober:
  """The compiled probes and their fixed inputs; `probe(params)` gives one step's results."""

  def __init__(self, cfg, workdir: str, rt: runtime_lib.Runtime,
               dispatch_lock: threading.Lock | None = None):
    self.cfg, self.mesh, self.model = cfg, rt.mesh, rt.model
    # Multi-device programs launched from two threads can reach the devices in different orders
    # and deadlock in their collectives; launches (not execution) are serialised with the
    # restore thread under this lock.
    self.lock = dispatch_lock or threading.Lock()
    self.languages = list(config_lib.languages(cfg))
    self.primary = self.languages[0]
    self.abstract_params = rt.abstract_params
    self.lape = neurons_lib.LapeSettings(cfg.probe.filter_rate, cfg.probe.top_rate,
                                         cfg.probe.activation_bar_ratio)
    self._build_stats(rt, heldout_batches(cfg, workdir))
    self.probe_set, self._lens = None, None
    if cfg.data.source == 'corpus':
      self._build_lens(rt, workdir)
    if self._lens is None:
      metrics_lib.log('logit lens: skipped (needs data.source=corpus and probe-set prompts in '
                      f'one of {self.languages[1:]})')

  def _build_stats(self, rt: runtime_lib.Runtime, batches: list[dict[str, np.ndarray]]) -> None:
    """Neuron statistics and held-out loss over the whole sample, as one compiled program."""
    rep = sharding.replicated(rt.mesh)
    # The held-out sample is stacked [n, B, L] and scanned inside one program: many collective
    # programs in flight at once can deadlock XLA:CPU's multi-device runtime.
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    stacked_sh = jax.sharding.NamedSharding(
        rt.mesh, jax.sharding.PartitionSpec(None, *sharding.batch_sharding(rt.mesh).spec))
    self.heldout = jax.device_put(stacked, stacked_sh)
    self.ones = rt.replicated(np.ones((self.model.cfg.num_layers, self.model.cfg.d_ff),
                                      np.float32))
    stats = sharding.with_rules(functools.partial(neurons_lib.neuron_stats, self.model,
                                                  num_langs=len(self.languages)))

    def stats_all(params, stacked, mask):
      def body(total, batch):
        return jax.tree.map(jnp.add, total, stats(params, batch, mask)), None
      zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), jax.eval_shape(
          lambda: stats(params, jax.tree.map(lambda x: x[0], stacked), mask)))
      return jax.lax.scan(body, zeros, stacked)[0]

    self._stats = jax.jit(stats_all, in_shardings=(rt.param_shardings, stacked_sh, rep),
                          out_shardings=rep)

  def _build_lens(self, rt: runtime_lib.Runtime, workdir: str) -> None:
    """The logit lens on the probe-set prompts of the run's non-primary languages."""
    from babel_jax.data import corpus, tokenizer
    cfg = self.cfg
    tok, _ = tokenizer.load(data_lib.tokenizer_dir(cfg, workdir),
                            corpus.load_manifest(data_lib.corpus_dir(cfg, workdir)))
    path = cfg.probe.probe_set or probe_set_lib.DEFAULT_PATH
    covered = probe_set_lib.load_raw(path)['languages']
    wanted = [lang for lang in self.languages[1:] if lang in covered]
    if not wanted:
      return
    ps = self.probe_set = probe_set_lib.build(tok, wanted, cfg.model.max_len, path,
                                              cfg.probe.max_prompts_per_pair)
    for problem in ps.problems[:10]:
      metrics_lib.log(f'probe set: skipped {problem}')
    if len(ps.problems) > 10:
      metrics_lib.log(f'probe set: ... {len(ps.problems)} prompts skipped in all')
    self._lens_inputs = rt.replicated(
        (ps.batch(), ps.last_P, ps.target_first_P, ps.python_first_P))
    rep = sharding.replicated(rt.mesh)
    self._lens = jax.jit(sharding.with_rules(functools.partial(lens_lib.lens_stats, self.model)),
                         in_shardings=(rt.param_shardings, rep, rep, rep, rep),
                         out_shardings=rep)

  def _pass(self, params, mask) -> dict[str, np.ndarray]:
    with self.lock:
      total = self._stats(params, self.heldout, mask)
    return jax.device_get(total)

  def probe(self, params) -> dict[str, Any]:
    t0 = time.perf_counter()
    totals = self._pass(params, self.ones)
    tokens = np.maximum(totals['tokens_K'], 1)
    prob_NxFxK = totals['active_NxFxK'] / tokens
    selection = neurons_lib.lape(prob_NxFxK, self.lape)
    loss = totals['loss_sum_K'] / np.maximum(totals['loss_tokens_K'], 1)
    out: dict[str, Any] = {
        'loss': dict(zip(self.languages, loss.tolist())),
        'heldout_tokens': dict(zip(self.languages, totals['tokens_K'].astype(int).tolist())),
        'neurons': neurons_lib.summarise(selection['member_KxNxF'], self.languages, self.primary),
        'lape': {'filter_value': selection['filter_value'],
                 'activation_bar': selection['activation_bar'], **self.lape.__dict__},
    }
    t_stats = time.perf_counter() - t0
    if self.cfg.probe.deactivate:
      out['deactivated_loss'] = {}
      for i, lang in enumerate(self.languages):
        member = selection['member_KxNxF'][i]
        if member.any():
          with self.lock:
            mask = jax.device_put(neurons_lib.mask_without(member), sharding.replicated(self.mesh))
          t = self._pass(params, mask)
          zeroed = t['loss_sum_K'] / np.maximum(t['loss_tokens_K'], 1)
          out['deactivated_loss'][lang] = dict(zip(self.languages, zeroed.tolist()))
    t1 = time.perf_counter()
    if self._lens is not None:
      with self.lock:
        lens_out = self._lens(params, *self._lens_inputs)
      lens_out = jax.device_get(lens_out)
      out['lens'] = lens_lib.summarise(lens_out, self.probe_set.languages)
    out['seconds'] = {'stats': t_stats, 'deactivation': t1 - t0 - t_stats,
                      'lens': time.perf_counter() - t1}
    return out


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


def _warn_partial(ckpt_dir: str, follow: bool, warned: set[str]) -> None:
  # While following a live run, a fresh tmp folder is a save in flight, not a partial one.
  for name in _partial_saves(ckpt_dir, min_age_s=300.0 if follow else 0.0):
    if name not in warned:
      warned.add(name)
      metrics_lib.log(f'warning: skipping partial checkpoint {ckpt_dir}/{name} (a save that '
                      'did not finish)')


def _probe_steps(todo: list[int], restore, prober: 'Prober', run: RunDir,
                 stats: dict[str, list]) -> None:
  """Probes `todo` in order while a background thread restores the next checkpoint."""
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
    result = {'step': step, **prober.probe(params)}
    probe_s = time.perf_counter() - t
    run.write_probe(step, result)
    for key, value in (('probed', step), ('restore_s', restore_s), ('wait_s', wait_s),
                       ('probe_s', probe_s)):
      stats[key].append(value)
    metrics_lib.log(_line(step, result, probe_s, restore_s, wait_s, prober.primary))
  pool.shutdown()


def walk(cfg, workdir: str, follow: bool = False) -> dict[str, Any]:
  """Probes every selected checkpoint of the run in workdir that has no result yet."""
  config_lib.validate(cfg)
  run = RunDir(workdir)
  if not (os.path.isdir(run.checkpoints) and
          (follow or ckpt_lib.complete_steps(run.checkpoints))):
    raise RunError(f'no checkpoints to probe in {run.checkpoints}; train a run there first')
  ckpt_lib.check_same_model(run.model_config(), cfg.model.to_dict(), workdir)
  lock = threading.Lock()
  prober = Prober(cfg, workdir, runtime_lib.build(cfg), lock)
  manager = ckpt_lib.make_manager(run.checkpoints, read_only=True)
  warned: set[str] = set()
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
      _probe_steps(todo, restore, prober, run, stats)
    if not follow:
      break
    if final is not None and final in available and not todo:
      metrics_lib.log(f'the run reached its final step {final}; stop following')
      break
    if time.time() - last_new > cfg.probe.follow_timeout_s:
      metrics_lib.log(f'no new checkpoint for {cfg.probe.follow_timeout_s:.0f}s; stop following')
      break
    time.sleep(cfg.probe.follow_poll_s)
  manager.close()
  if not stats['probed'] and not run.probe_results():
    raise RunError(f'no checkpoint of {run.checkpoints} was probed: ' + (
        f'none of {available} could be restored' if stats['skipped'] else
        f'probe.steps={cfg.probe.steps!r} selects none of {available}'))
  return stats


def _line(step, result, probe_s, restore_s, wait_s, primary) -> str:
  loss = ' '.join(f'{k}={v:.3f}' for k, v in result['loss'].items())
  transfer = ' '.join(f'{k}={v["total"]}' for k, v in result['neurons']['transferring'].items())
  text = f'probe step {step}: loss [{loss}]'
  if transfer:
    text += f' transferring neurons [{transfer}]'
  if 'lens' in result:
    share = ' '.join(f'{k}={np.mean(v["python_top1"]):.2f}/{np.mean(v["target_top1"]):.2f}'
                     for k, v in result['lens'].items())
    text += f' lens {primary}/L top1 [{share}]'
  return text + f' ({probe_s:.1f}s probe, {restore_s:.1f}s restore, {wait_s:.2f}s waited)'

