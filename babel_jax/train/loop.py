"""The resumable training loop: init or resume, step, log, checkpoint, stop cleanly.

A run directory holds config.json, run_info.json, metrics.jsonl, tb/ and checkpoints/. Starting
the same command again resumes from the latest checkpoint with the same losses as an
uninterrupted run: parameters, optimizer state, step, RNG and data-iterator state are restored.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import checkpoints as ckpt_lib
from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import model as model_lib
from babel_jax import sharding
from babel_jax.data import mixture_spec
from babel_jax.train import metrics as metrics_lib
from babel_jax.train import state as state_lib
from babel_jax.train import step as step_lib


class NonFiniteLossError(RuntimeError):
  """Loss or gradient norm became NaN/inf; the last checkpoint before it is kept."""


class _StopFlag:
  """Set by SIGTERM: the loop saves a checkpoint at the next step boundary and exits."""

  def __init__(self):
    self.set = False
    self._previous = None

  def __enter__(self):
    def handler(signum, frame):
      del frame
      metrics_lib.log(f'signal {signum}: will save a checkpoint and stop after this step')
      self.set = True
    try:
      self._previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # Not the main thread (e.g. inside a test runner thread).
      self._previous = None
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def write_run_config(cfg, workdir: str) -> None:
  """Stores the resolved config; a changed config keeps the old one under a new name."""
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    with open(path) as f:
      ckpt_lib.check_same_model(json.load(f)['model'], cfg.model.to_dict(), path)
  if jax.process_index() == 0:
    _write_keeping_old(path, config_lib.to_json(cfg))


def _write_keeping_old(path: str, text: str) -> None:
  """Writes path atomically; a different earlier version is kept as <name>.<time>.json."""
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:
        return
    os.replace(path, path.replace('.json', f'.{int(time.time())}.json'))
  config_lib.atomic_write(path, text)


def _init_or_resume(cfg, workdir, model, tx, mesh, manager, source):
  """Returns (state, start_step, provenance dict)."""
  abstract, shardings = state_lib.state_shardings(model, tx, mesh, cfg.data.seq_len)
  latest = manager.latest_step()
  if latest is not None:
    state, meta = ckpt_lib.restore(manager, latest, abstract)
    if not ckpt_lib.restore_data_state(manager, latest, source):
      metrics_lib.log(f'warning: checkpoint {latest} has no data state for '
                      f'{jax.process_count()} hosts (written by another host count); the data '
                      'stream restarts from its beginning')
    metrics_lib.log(f'resumed from {workdir}/checkpoints/{latest}')
    return state, latest, {'resumed_from_step': latest}
  if cfg.train.init_from:
    src = ckpt_lib.checkpoint_dir(cfg.train.init_from)
    if not os.path.isdir(src):
      raise config_lib.ConfigError(f'train.init_from={cfg.train.init_from!r}: no such directory')
    ckpt_lib.check_same_model(ckpt_lib.source_model_config(cfg.train.init_from),
                              cfg.model.to_dict(), cfg.train.init_from)
    src_manager = ckpt_lib.make_manager(src, read_only=True)
    step = cfg.train.init_step if cfg.train.init_step >= 0 else src_manager.latest_step()
    if step is None or step not in src_manager.all_steps():
      raise config_lib.ConfigError(
          f'train.init_from={cfg.train.init_from!r} has no checkpoint at step '
          f'{cfg.train.init_step}; available: {sorted(src_manager.all_steps())}')
    params = ckpt_lib.restore_params(src_manager, step, abstract.params)
    src_manager.close()
    state = state_lib.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state=state_lib.fresh_opt_state(tx, params, shardings),
        rng=jax.random.PRNGKey(cfg.seed))
    metrics_lib.log(f'continual pre-training from {src} step {step} (fresh optimizer, step 0)')
    return state, 0, {'init_from': os.path.abspath(src), 'init_step': step}
  state = state_lib.init_state(model, tx, mesh, cfg.seed, cfg.data.seq_len)
  return state, 0, {}


def _scalars(metrics: dict[str, Any], languages, lr: float) -> dict[str, float]:
  m = jax.device_get(metrics)
  out = {'loss': float(m['loss']), 'grad_norm': float(m['grad_norm']), 'lr': lr}
  for i, lang in enumerate(languages):
    if m['lang_tokens'][i] > 0:
      out[f'loss/{lang}'] = float(m['lang_loss'][i])
  return out


def train(cfg, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) training to `train.steps`; returns a summary of the final state."""
  config_lib.validate(cfg)
  config_lib.check_workdir(workdir)
  mesh = sharding.make_mesh(cfg.mesh)
  write_run_config(cfg, workdir)
  model_cfg = model_lib.ModelConfig.from_config(cfg.model)
  model = model_lib.Transformer(model_cfg)
  tx = state_lib.optimizer(cfg.train)
  languages = config_lib.languages(cfg)
  source = data_lib.make_source(cfg, jax.process_index(), jax.process_count(), workdir)
  manager = ckpt_lib.make_manager(os.path.join(workdir, ckpt_lib.CHECKPOINT_DIR),
                                  cfg.checkpoint, cfg.train.steps)
  state, start, provenance = _init_or_resume(cfg, workdir, model, tx, mesh, manager, source)
  _, shardings = state_lib.state_shardings(model, tx, mesh, cfg.data.seq_len)
  step_fn = step_lib.jit_train_step(model, tx, mesh, shardings, len(languages),
                                    cfg.train.grad_accum)
  schedule = state_lib.lr_schedule(cfg.train)
  tokens_per_step = cfg.train.batch_size * cfg.data.seq_len
  flops_per_step = model_lib.flops_per_token(model_cfg, cfg.data.seq_len) * tokens_per_step
  peak = cfg.train.peak_flops or metrics_lib.measure_peak_flops(list(mesh.devices.flat),
                                                                dtype=cfg.model.dtype)
  info = {'jax': jax.__version__, 'backend': jax.default_backend(),
          'devices': len(mesh.devices.flat), 'processes': jax.process_count(),
          'mesh': dict(mesh.shape), 'params': model_lib.param_count(state.params),
          'flops_per_token': flops_per_step / tokens_per_step, 'peak_flops': peak,
          'seed': cfg.seed, 'start_step': start, 'data': getattr(source, 'info', {}),
          **provenance}
  if jax.process_index() == 0:
    config_lib.atomic_write(os.path.join(workdir, 'run_info.json'), json.dumps(info, indent=2))
    _write_keeping_old(os.path.join(workdir, 'mixture.json'),
                       mixture_spec.from_config(cfg).to_json())
  if 'init_from' in provenance:
    # Step 0 is the starting point of continual pre-training: curves start at P = 1 (Eq. 1).
    ckpt_lib.save(manager, state, {}, source, force=True)
  metrics_lib.log(f'model {info["params"] / 1e6:.2f}M params, mesh {info["mesh"]}, '
                  f'peak {peak / 1e9:.1f} GFLOP/s, steps {start}->{cfg.train.steps}')
  writer = metrics_lib.MetricsWriter(workdir, start)

  total = cfg.train.steps
  pending = None  # (step, device metrics) read one step late so the device never idles.
  last: dict[str, float] = {}
  window = {'t': time.perf_counter(), 'steps': 0}

  def settle(step: int, metrics) -> None:
    nonlocal last
    s = _scalars(metrics, languages, float(schedule(step - 1)))
    if not (np.isfinite(s['loss']) and np.isfinite(s['grad_norm'])):
      manager.wait_until_finished()
      raise NonFiniteLossError(
          f'non-finite loss {s["loss"]} / grad norm {s["grad_norm"]} at step {step}; the last '
          f'good checkpoint is step {manager.latest_step()} in {workdir}/checkpoints')
    window['steps'] += 1
    if step % cfg.train.log_every == 0 or step == total:
      dt = time.perf_counter() - window['t']
      s['tokens_per_s'] = tokens_per_step * window['steps'] / max(dt, 1e-9)
      s['mfu'] = flops_per_step * window['steps'] / max(dt, 1e-9) / peak
      window.update(t=time.perf_counter(), steps=0)
      writer.write(step, s)
      metrics_lib.log(metrics_lib.console_line(step, total, s, languages))
    last = s

  stopped = 'finished'
  ran = 0
  with _StopFlag() as stop:
    for _ in range(start, total):
      batch = sharding.put_batch(mesh, next(source))
      state, metrics = step_fn(state, batch)
      step = start + ran + 1
      ran += 1
      if pending is not None:
        settle(*pending)
      pending = (step, metrics)
      halt = stop.set or (cfg.train.stop_after and ran >= cfg.train.stop_after)
      if halt or step == total or manager.should_save(step):
        settle(*pending)
        pending = None
        ckpt_lib.save(manager, state, {}, source,
                      force=bool(halt) or step == total)
      if halt:
        stopped = 'signal' if stop.set else 'stop_after'
        break
  if pending is not None:
    settle(*pending)
  manager.wait_until_finished()
  saved = sorted(manager.all_steps())
  manager.close()
  writer.close()
  if hasattr(source, 'close'):
    source.close()
  final_step = int(state.step)
  metrics_lib.log(f'{stopped} at step {final_step}; checkpoints: {saved}')
  return {'step': final_step, 'status': stopped, 'metrics': last, 'state': state}
