"""The layout of a run directory, owned here alone: every other module asks a RunDir for paths.

  config.json            the resolved config (an earlier, different one kept as config.<t>.json)
  run_info.json          versions, devices, mesh, sizes, seed, provenance, data identity
  mixture.json           the MixtureSpec the run trains on
  metrics.jsonl, tb/     training scalars (JSON lines, TensorBoard)
  checkpoints/<step>/    Orbax checkpoints
  probes/<step>.json     probe results per checkpoint;  probes/tb/  the same as TensorBoard
  eval/<step>/           results.json, per_problem.json, completions.jsonl
  report/, report/tb/    the per-run report, its curves as TensorBoard scalars
"""

from __future__ import annotations

import json
import os
from typing import Any

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.errors import ConfigError, RunError

CHECKPOINTS = 'checkpoints'


def _read(path: str) -> Any:
  """A run file's JSON; a damaged one is a RunError naming it."""
  try:
    return io.read_json(path)
  except ValueError as e:
    raise RunError(f'{path} is damaged (not valid JSON: {e}); restore it or move it aside') from e


class RunDir:
  """One run's directory (it need not exist yet)."""

  def __init__(self, path: str):
    self.path = path

  @classmethod
  def containing(cls, path: str) -> 'RunDir':
    """The run of a workdir, or of its checkpoints/ folder."""
    norm = os.path.normpath(path)
    if os.path.basename(norm) == CHECKPOINTS and not os.path.isdir(os.path.join(norm, CHECKPOINTS)):
      return cls(os.path.dirname(norm))
    return cls(path)

  def __repr__(self) -> str:
    return f'RunDir({self.path!r})'

  def _at(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  # Paths -----------------------------------------------------------------------------------
  config_path = property(lambda self: self._at('config.json'))
  run_info_path = property(lambda self: self._at('run_info.json'))
  mixture_path = property(lambda self: self._at('mixture.json'))
  metrics_path = property(lambda self: self._at('metrics.jsonl'))
  tb_dir = property(lambda self: self._at('tb'))
  checkpoints = property(lambda self: self._at(CHECKPOINTS))
  probes_dir = property(lambda self: self._at('probes'))
  probes_tb_dir = property(lambda self: self._at('probes', 'tb'))
  report_dir = property(lambda self: self._at('report'))
  report_tb_dir = property(lambda self: self._at('report', 'tb'))

  def probe_path(self, step: int) -> str:
    return self._at('probes', f'{step}.json')

  def eval_dir(self, step: int) -> str:
    return self._at('eval', str(step))

  def eval_results_path(self, step: int) -> str:
    return self._at('eval', str(step), 'results.json')

  def per_problem_path(self, step: int) -> str:
    return self._at('eval', str(step), 'per_problem.json')

  # Reading ---------------------------------------------------------------------------------
  def config(self) -> dict[str, Any] | None:
    """The run's saved config as a dict, or None before the run has started."""
    return _read(self.config_path) if os.path.exists(self.config_path) else None

  def typed_config(self) -> config_lib.Config | None:
    """The run's saved config as the typed Config, or None before the run has started."""
    if not os.path.exists(self.config_path):
      return None
    with open(self.config_path) as f:
      return config_lib.from_json(f.read())

  def model_config(self) -> dict[str, Any] | None:
    saved = self.config()
    return None if saved is None else saved['model']

  def final_step(self) -> int | None:
    saved = self.config()
    return None if saved is None else int(saved['train']['steps'])

  def has_checkpoint(self, step: int) -> bool:
    """Whether the checkpoint at `step` was written completely (Orbax renames it when done)."""
    return os.path.isdir(os.path.join(self.checkpoints, str(step)))

  def probed(self, step: int) -> bool:
    return os.path.exists(self.probe_path(step))

  def probe_steps(self) -> list[int]:
    """The steps with a probes/<step>.json, in order (probes/result.py reads them)."""
    if not os.path.isdir(self.probes_dir):
      return []
    return sorted(int(name[:-5]) for name in os.listdir(self.probes_dir)
                  if name.endswith('.json') and name[:-5].isdigit())

  def probe_json(self, step: int) -> dict[str, Any]:
    return _read(self.probe_path(step))

  def evaluated(self, step: int) -> bool:
    return os.path.exists(self.eval_results_path(step))

  def eval_results(self, step: int) -> dict[str, Any] | None:
    path = self.eval_results_path(step)
    return _read(path) if os.path.exists(path) else None

  def metrics(self) -> list[dict[str, Any]]:
    """The training scalars of metrics.jsonl, one record per logged step."""
    return io.read_jsonl(self.metrics_path)

  def per_problem(self, step: int) -> dict[str, dict[str, bool]] | None:
    """{language: {task: solved}} of a checkpoint, or None when it was not evaluated."""
    path = self.per_problem_path(step)
    return _read(path) if os.path.exists(path) else None

  # Writing ---------------------------------------------------------------------------------
  def ensure_writable(self) -> None:
    """Creates the directory and proves it is writable, before any expensive work."""
    try:
      os.makedirs(self.path, exist_ok=True)
      probe = self._at(f'.write_probe.{os.getpid()}')
      with open(probe, 'w') as f:
        f.write('ok')
      os.remove(probe)
    except OSError as e:
      raise ConfigError(f'workdir {self.path!r} is not writable: {e.strerror or e}') from e

  def write_config(self, text: str) -> None:
    io.write_keeping_old(self.config_path, text)

  def write_mixture(self, text: str) -> None:
    io.write_keeping_old(self.mixture_path, text)

  def write_run_info(self, info: dict[str, Any]) -> None:
    io.write_json(self.run_info_path, info)

  def write_probe(self, step: int, record: dict[str, Any]) -> None:
    os.makedirs(self.probes_dir, exist_ok=True)
    io.atomic_write(self.probe_path(step), json.dumps(record))

  def write_eval(self, step: int, files: dict[str, str]) -> None:
    """Writes eval/<step>/<name> for each file; results.json last, since it marks the step done."""
    os.makedirs(self.eval_dir(step), exist_ok=True)
    for name in sorted(files, key=lambda n: n == 'results.json'):
      io.atomic_write(os.path.join(self.eval_dir(step), name), files[name])
