"""The resumable training loop: init or resume, step, log, checkpoint, stop cleanly.

A run directory holds config.json, run_info.json, metrics.jsonl, tb/ and checkpoints/. Starting
the same command again resumes from the latest checkpoint with the same losses as an
uninterrupted run: parameters, optimizer state, step, RNG and data-iterator state are restored.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax import model as model_lib
from babel_jax.data import loader, mixture_spec
from babel_jax.runtime import factory as runtime_lib
from babel_jax.errors import ConfigError, StorageError, TrainingError
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import metrics as metrics_lib
from babel_jax.train import state as state_lib
from babel_jax.train import step as step_lib


class NonFiniteLossError(TrainingError):
  """Loss or gradient norm became NaN/inf; the last checkpoint before it is kept."""


class _StopFlag:
  """Set by SIGTERM or Ctrl-C: the loop saves a checkpoint at the next step boundary and exits.
  A second Ctrl-C stops at once (KeyboardInterrupt), keeping the checkpoints already written."""

  def __init__(self):
    self.set = False
    self._previous = {}

  def __enter__(self):
    def handler(signum, frame):
      del frame
      if self.set and signum == signal.SIGINT:
        raise KeyboardInterrupt
      again = ' (Ctrl-C again stops at once)' if signum == signal.SIGINT else ''
      io.log(f'signal {signum}: will save a checkpoint and stop after this step{again}')
      self.set = True
    for signum in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[signum] = signal.signal(signum, handler)
      except ValueError:  # Not the main thread (e.g. inside a test runner thread).
        pass
    return self

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)


def write_run_config(cfg, run: RunDir) -> None:
  """Stores the resolved config; a changed config keeps the old one under a new name."""
  ckpt_lib.check_same_model(run.model_config(), cfg.model.to_dict(), run.config_path)
  if jax.process_index() == 0:
    run.write_config(config_lib.to_json(cfg))


def _init_or_resume(cfg, run: RunDir, rt, c: step_lib.Compiled, manager, source):
  """Returns (state, start_step, provenance dict)."""
  latest = manager.latest_step()
  if latest is not None:
    state, meta = ckpt_lib.restore(manager, latest, c.abstract)
    if not ckpt_lib.restore_data_state(manager, latest, source):
      io.log(f'warning: checkpoint {latest} has no data state for '
             f'{jax.process_count()} hosts (written by another host count); the data '
             'stream restarts from its beginning')
    io.log(f'resumed from {run.checkpoints}/{latest}')
    return state, latest, {'resumed_from_step': latest}
  if cfg.train.init_from:
    return _init_from(cfg, rt, c)
  params = rt.init_params(cfg.seed)
  state = state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                               opt_state=c.init_opt(params), rng=jax.random.PRNGKey(cfg.seed))
  return state, 0, {}


def _init_from(cfg, rt, c: step_lib.Compiled):
  """Continual pre-training: another run's parameters, a fresh optimizer, step 0. A source with
  a smaller vocabulary is grown (`grow_vocabulary`): its rows are kept, the new ones drawn fresh."""
  src_run = RunDir.containing(cfg.train.init_from)
  src = src_run.checkpoints
  if not os.path.isdir(src):
    raise ConfigError(f'train.init_from={cfg.train.init_from!r}: no checkpoints there')
  src_model = src_run.model_config()
  src_vocab = _source_vocab(src_model, cfg.model.vocab_size, cfg.train.init_from)
  ckpt_lib.check_same_model(src_model and {**src_model, 'vocab_size': cfg.model.vocab_size},
                            cfg.model.to_dict(), cfg.train.init_from)
  src_manager = ckpt_lib.make_manager(src, read_only=True)
  step = cfg.train.init_step if cfg.train.init_step >= 0 else src_manager.latest_step()
  if step is None or step not in src_manager.all_steps():
    raise ConfigError(f'train.init_from={cfg.train.init_from!r} has no checkpoint at step '
                      f'{cfg.train.init_step}; available: {sorted(src_manager.all_steps())}')
  provenance = {'init_from': os.path.abspath(src), 'init_step': step}
  if src_vocab == cfg.model.vocab_size:
    params = ckpt_lib.restore_params(src_manager, step, c.abstract.params)
  else:
    src_cfg = config_lib.replace(cfg, **{'model.vocab_size': src_vocab})
    small = ckpt_lib.restore_params(src_manager, step, runtime_lib.build_runtime(src_cfg).abstract_params)
    params = grow_vocabulary(small, rt.init_params(cfg.seed), rt.param_shardings)
    provenance['grown_vocabulary'] = {'from': src_vocab, 'to': cfg.model.vocab_size,
                                      'fresh_rows_seed': cfg.seed}
    io.log(f'vocabulary grown from {src_vocab} to {cfg.model.vocab_size} ids: rows '
           f'{src_vocab}.. drawn fresh from the init distribution (seed {cfg.seed})')
  src_manager.close()
  state = state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                               opt_state=c.init_opt(params), rng=jax.random.PRNGKey(cfg.seed))
  io.log(f'continual pre-training from {src} step {step} (fresh optimizer, step 0)')
  return state, 0, provenance


def _source_vocab(src_model, vocab: int, where: str) -> int:
  """The init_from run's vocabulary size; it may be smaller than this run's, never larger."""
  src_vocab = int((src_model or {}).get('vocab_size', vocab))
  if src_vocab > vocab:
    raise ConfigError(f'train.init_from={where!r} has a vocabulary of {src_vocab} ids, more '
                      f'than model.vocab_size={vocab}; a vocabulary can grow, not shrink')
  return src_vocab


def grow_vocabulary(small, fresh, shardings):
  """`fresh` (a freshly initialised model of the larger vocabulary) with `small`'s parameters
  written over it: every leaf equal in shape is `small`'s; a leaf with a vocabulary axis keeps
  `small`'s rows and `fresh`'s beyond them, so new ids start as a freshly grown vocabulary."""
  def merge(s, f):
    if s.shape == f.shape:
      return s
    if s.ndim != f.ndim or sum(a != b for a, b in zip(s.shape, f.shape)) != 1:
      raise ValueError(f'cannot grow a parameter of shape {s.shape} into {f.shape}')
    return jax.lax.dynamic_update_slice(f, s.astype(f.dtype), (0,) * f.ndim)
  return jax.jit(lambda s, f: jax.tree.map(merge, s, f), out_shardings=shardings)(small, fresh)


def _scalars(metrics: dict[str, Any], languages, lr: float) -> dict[str, float]:
  m = jax.device_get(metrics)
  out = {'loss': float(m['loss']), 'grad_norm': float(m['grad_norm']), 'lr': lr}
  for i, lang in enumerate(languages):
    if m['lang_tokens'][i] > 0:
      out[f'loss/{lang}'] = float(m['lang_loss'][i])
  return out


class _Settler:
  """Reads a step's metrics (one step late, so the device never idles), stops on NaN, logs
  throughput and MFU every `train.log_every` steps."""

  def __init__(self, cfg, rt, run: RunDir, manager, start: int, peak: float):
    self.cfg, self.run, self.manager, self.peak = cfg, run, manager, peak
    self.languages = cfg.data.languages
    self.schedule = state_lib.lr_schedule(cfg.train)
    self.tokens_per_step = cfg.train.batch_size * cfg.data.seq_len
    self.flops_per_step = (model_lib.flops_per_token(rt.model.cfg, cfg.data.seq_len)
                           * self.tokens_per_step)
    self.writer = metrics_lib.MetricsWriter(run, start)
    self.window = {'t': time.perf_counter(), 'steps': 0}
    self.last: dict[str, float] = {}

  def __call__(self, step: int, metrics) -> None:
    total = self.cfg.train.steps
    s = _scalars(metrics, self.languages, float(self.schedule(step - 1)))
    if not (np.isfinite(s['loss']) and np.isfinite(s['grad_norm'])):
      self.manager.wait_until_finished()
      raise NonFiniteLossError(
          f'non-finite loss {s["loss"]} / grad norm {s["grad_norm"]} at step {step}; the last '
          f'good checkpoint is step {self.manager.latest_step()} in {self.run.checkpoints}')
    self.window['steps'] += 1
    if step % self.cfg.train.log_every == 0 or step == total:
      dt = max(time.perf_counter() - self.window['t'], 1e-9)
      s['tokens_per_s'] = self.tokens_per_step * self.window['steps'] / dt
      s['mfu'] = self.flops_per_step * self.window['steps'] / dt / self.peak
      self.window.update(t=time.perf_counter(), steps=0)
      self.writer.write(step, s)
      io.log(metrics_lib.console_line(step, total, s, self.languages))
    self.last = s


def _run_info(cfg, rt, source, state, start: int, peak: float, provenance) -> dict[str, Any]:
  mesh = rt.mesh
  return {'jax': jax.__version__, 'backend': jax.default_backend(),
          'devices': len(mesh.devices.flat), 'processes': jax.process_count(),
          'mesh': dict(mesh.shape), 'params': model_lib.param_count(state.params),
          'flops_per_token': model_lib.flops_per_token(rt.model.cfg, cfg.data.seq_len),
          'peak_flops': peak, 'seed': cfg.seed, 'start_step': start,
          'data': getattr(source, 'info', {}), **provenance}


def train(cfg, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) training to `train.steps`; returns a summary of the final state."""
  cfg = config_lib.validate(cfg)
  run = RunDir(workdir)
  run.ensure_writable()
  rt = runtime_lib.build_runtime(cfg)
  write_run_config(cfg, run)
  compiled = step_lib.compiled(rt, cfg.train, len(cfg.data.languages))
  source = loader.make_source(cfg, jax.process_index(), jax.process_count(), workdir)
  manager = ckpt_lib.make_manager(run.checkpoints, cfg.checkpoint, cfg.train.steps)
  state, start, provenance = _init_or_resume(cfg, run, rt, compiled, manager, source)
  step_fn = compiled.step
  peak = cfg.train.peak_flops or metrics_lib.measure_peak_flops(list(rt.mesh.devices.flat),
                                                                dtype=cfg.model.dtype)
  info = _run_info(cfg, rt, source, state, start, peak, provenance)
  if jax.process_index() == 0:
    run.write_run_info(info)
    run.write_mixture(mixture_spec.from_config(cfg).to_json())
  saver = ckpt_lib.Saver(manager, cfg.checkpoint.optimizer_state)
  settle = _Settler(cfg, rt, run, manager, start, peak)
  io.log(f'model {info["params"] / 1e6:.2f}M params, mesh {info["mesh"]}, '
         f'peak {peak / 1e9:.1f} GFLOP/s, steps {start}->{cfg.train.steps}')
  total = cfg.train.steps
  pending = None  # (step, device metrics), settled one step late
  stopped, ran, reached = 'finished', 0, start
  try:
    if 'init_from' in provenance or (cfg.checkpoint.initial and start == 0):
      # Step 0 is the starting point of continual pre-training (curves start at P = 1, Eq. 1),
      # or of a reference run (effective data transferred starts from its untrained loss).
      saver.save(state, source, force=True)
    with _StopFlag() as stop:
      for step in range(start + 1, total + 1):
        state, metrics = step_fn(state, rt.put_batch(next(source)))
        ran, reached = ran + 1, step
        if pending is not None:
          settle(*pending)
        pending = (step, metrics)
        halt = stop.set or (cfg.train.stop_after and ran >= cfg.train.stop_after)
        if halt or step == total or manager.should_save(step):
          settle(*pending)
          pending = None
          saver.save(state, source, force=bool(halt) or step == total)
        if halt:
          stopped = 'signal' if stop.set else 'stop_after'
          break
    if pending is not None:
      settle(*pending)
    saver.wait()
    settle.writer.close()
  except Exception as e:
    reason = io.storage_failure(e)
    if reason is None:
      raise
    saver.abandon()
    settle.writer.abandon()
    if hasattr(source, 'close'):
      source.close()
    raise StorageError(_storage_message(run, saver.writing, e, reason, reached)) from e
  saved = sorted(manager.all_steps())
  manager.close()
  if hasattr(source, 'close'):
    source.close()
  final_step = int(state.step)
  io.log(f'{stopped} at step {final_step}; checkpoints: {saved}')
  return {'step': final_step, 'status': stopped, 'metrics': settle.last, 'state': state}


def _storage_message(run: RunDir, checkpoint: int | None, e: BaseException, reason: str,
                     reached: int) -> str:
  """One line: what could not be written, at which step, and how to go on."""
  if checkpoint is not None:
    path = f'checkpoint {run.checkpoints}/{checkpoint}'
  else:
    path = next((x.filename for x in _chain(e) if isinstance(x, OSError) and x.filename),
                run.path)
  saved = ckpt_lib.complete_steps(run.checkpoints)
  way_on = (f'the last good checkpoint is {run.checkpoints}/{saved[-1]}: free space and run the '
            f'same command again to resume from step {saved[-1]}' if saved else
            'no checkpoint was written: free space and run the same command again')
  return f'cannot write {path} ({reason}) at training step {reached}; {way_on}'


def _chain(e: BaseException | None):
  while e is not None:
    yield e
    e = e.__cause__ or e.__context__
