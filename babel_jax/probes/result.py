"""One probed step's results as frozen, typed records: what the probes measure and everything reads.

prober.py builds a `ProbeResult`; `save` writes its `to_json()` to the run's probes/<step>.json
and `load` reads it back with `from_json`; the TensorBoard and console writers (stream.py) and
the interpretation (babel_jax.dynamics) read its fields. No JAX (numpy, and RunDir for the
files): the numpy-only interpretation imports it. Files written before the primary_* names
load (their python_* keys are read as primary_*); an aligned lens written before the within-block
readings does not (its share read block bias, see docs/method.md): such a run must be probed
again.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from babel_jax.errors import RunError
from babel_jax.runtime.rundir import RunDir

PerLayer = tuple[float, ...]


def _layers(values) -> PerLayer:
  return tuple(float(v) for v in values)


def _renamed(d: Mapping[str, Any]) -> dict[str, Any]:
  """Keys of older files: python_* -> primary_* (the primary language was called Python)."""
  return {('primary_' + k[len('python_'):] if k.startswith('python_') else k): v
          for k, v in d.items()}


def _share(a, b) -> np.ndarray:
  """a / (a + b) elementwise, 0 where both are 0."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return a / np.maximum(a + b, 1e-30)


@dataclasses.dataclass(frozen=True)
class NeuronSet:
  """One language's LAPE neurons: the count per layer, the total, [layer, neuron] indices."""
  per_layer: tuple[int, ...] = ()
  total: int = 0
  indices: tuple[tuple[int, int], ...] = ()

  def to_json(self) -> dict[str, Any]:
    return {'per_layer': list(self.per_layer), 'total': self.total,
            'indices': [list(i) for i in self.indices]}

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> NeuronSet:
    return cls(tuple(int(x) for x in d.get('per_layer', ())), int(d.get('total', 0)),
               tuple((int(a), int(b)) for a, b in d.get('indices', ())))


@dataclasses.dataclass(frozen=True)
class Neurons:
  """Language-specific neurons per language; language-transferring ones (also the primary's)
  per non-primary language."""
  specific: Mapping[str, NeuronSet]
  transferring: Mapping[str, NeuronSet]

  def transferring_total(self, lang: str) -> int:
    """The transferring-neuron count of `lang` (0 when not measured)."""
    return self.transferring.get(lang, NeuronSet()).total

  def to_json(self) -> dict[str, Any]:
    return {kind: {lang: s.to_json() for lang, s in getattr(self, kind).items()}
            for kind in ('specific', 'transferring')}

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> Neurons:
    return cls(*({lang: NeuronSet.from_json(s) for lang, s in d.get(kind, {}).items()}
                 for kind in ('specific', 'transferring')))


@dataclasses.dataclass(frozen=True)
class Lape:
  """The LAPE settings a step was measured with and the two thresholds they gave."""
  filter_rate: float
  top_rate: float
  activation_bar_ratio: float
  filter_value: float  # the filter_rate quantile of the activation probabilities
  activation_bar: float  # the activation_bar_ratio quantile

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> Lape:
    return cls(**{f.name: float(d[f.name]) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class LensReading:
  """The logit lens on one real language L's probe-set prompts, per layer: how often the primary
  or the L identifier is the top-1 token, and their mean probabilities."""
  prompts: int
  primary_top1: PerLayer
  target_top1: PerLayer
  neither_top1: PerLayer
  primary_prob: PerLayer
  target_prob: PerLayer

  @property
  def primary_share(self) -> np.ndarray:
    """Per layer: p(primary) / (p(primary) + p(L)), the working language (1 = the primary)."""
    return _share(self.primary_prob, self.target_prob)

  def to_json(self) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> LensReading:
    d = _renamed(d)
    layers = len(d['primary_top1'])
    return cls(int(d.get('prompts', 0)), _layers(d['primary_top1']), _layers(d['target_top1']),
               _layers(d.get('neither_top1', [0.0] * layers)), _layers(d['primary_prob']),
               _layers(d['target_prob']))


@dataclasses.dataclass(frozen=True)
class AlignedReading:
  """The aligned lens on one planted language's held-out positions, per layer, each a mean over
  the positions whose target is a moved id. q: a probability within one id block (the primary
  block [0, base) or the language's own block); m: a block's share of the whole distribution."""
  positions: int
  primary_within: PerLayer  # q(mirrored primary id | primary block)
  target_within: PerLayer  # q(planted id | its planted block)
  within_share: PerLayer  # q_primary / (q_primary + q_planted): the working language
  primary_top1_within: PerLayer  # the mirrored primary id is top-1 within the primary block
  target_top1_within: PerLayer  # the planted id is top-1 within its block
  primary_block_mass: PerLayer  # m(primary block)
  target_block_mass: PerLayer  # m(planted block)
  primary_block_share: PerLayer  # m_primary / (m_primary + m_planted): the block bias
  primary_prob: PerLayer  # p(mirrored primary id) over the whole vocabulary (= m_primary q_primary)
  target_prob: PerLayer  # p(planted id) over the whole vocabulary: the model's prediction

  @property
  def primary_share(self) -> np.ndarray:
    """Per layer: the within-block share, the working language with the block bias removed."""
    return np.asarray(self.within_share, np.float64)

  def to_json(self) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_json(cls, d: Mapping[str, Any], where: str = '') -> AlignedReading:
    if 'within_share' not in d:
      raise RunError(f'{where or "a probe result"}: its aligned lens predates the within-block '
                     'readings (its share read which id block the unembedding favours, not '
                     'structure); move the run\'s probes/ aside and run --mode probe again')
    return cls(int(d['positions']), **{f.name: _layers(d[f.name])
                                       for f in dataclasses.fields(cls)[1:]})


@dataclasses.dataclass(frozen=True)
class SolutionLoss:
  """The per-token loss of one language's hand-written correct HumanEval solutions."""
  loss: float
  tokens: int
  problems: int

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> SolutionLoss:
    return cls(float(d['loss']), int(d.get('tokens', 0)), int(d.get('problems', 0)))


@dataclasses.dataclass(frozen=True)
class KnowledgeReading:
  """Planted knowledge in one language (data/facts.py): per fact, the per-token loss of its body
  given its signature, for the taught facts and their untaught twins (same order: twin i of
  taught fact i)."""
  taught_names: tuple[str, ...]
  taught_loss: tuple[float, ...]
  untaught_names: tuple[str, ...]
  untaught_loss: tuple[float, ...]

  @property
  def transferred(self) -> float:
    """Knowledge in this language: mean untaught loss - mean taught loss (0: none; in the
    primary language itself this is retention)."""
    return float(np.mean(self.untaught_loss) - np.mean(self.taught_loss))

  @property
  def per_fact(self) -> np.ndarray:
    """[J] untaught twin's loss - taught fact's loss, fact by fact (the interval's samples)."""
    return np.asarray(self.untaught_loss) - np.asarray(self.taught_loss)

  def to_json(self) -> dict[str, Any]:
    return {k: list(v) for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> KnowledgeReading:
    return cls(tuple(d['taught_names']), _layers(d['taught_loss']), tuple(d['untaught_names']),
               _layers(d['untaught_loss']))


@dataclasses.dataclass(frozen=True)
class ProbeResult:
  """Everything the probes measured at one checkpoint step (prober.py says how)."""
  step: int
  loss: Mapping[str, float]  # held-out loss per language
  heldout_tokens: Mapping[str, int]  # held-out tokens per language
  neurons: Neurons
  lape: Lape | None  # None in files that did not record it
  deactivated_loss: Mapping[str, Mapping[str, float]] | None = None  # [zeroed lang][lang]
  lens: Mapping[str, LensReading] = dataclasses.field(default_factory=dict)  # real languages
  aligned_lens: Mapping[str, AlignedReading] = dataclasses.field(default_factory=dict)  # planted
  solution_loss: Mapping[str, SolutionLoss] = dataclasses.field(default_factory=dict)
  knowledge: Mapping[str, KnowledgeReading] = dataclasses.field(default_factory=dict)
  seconds: Mapping[str, float] = dataclasses.field(default_factory=dict)  # per instrument

  def to_json(self) -> dict[str, Any]:
    """The probes/<step>.json layout; instruments that did not run are left out."""
    out: dict[str, Any] = {'step': self.step, 'loss': dict(self.loss),
                           'heldout_tokens': dict(self.heldout_tokens),
                           'neurons': self.neurons.to_json()}
    if self.lape is not None:
      out['lape'] = self.lape.to_json()
    if self.deactivated_loss is not None:
      out['deactivated_loss'] = {k: dict(v) for k, v in self.deactivated_loss.items()}
    for key in ('lens', 'aligned_lens', 'solution_loss', 'knowledge'):
      if getattr(self, key):
        out[key] = {lang: r.to_json() for lang, r in getattr(self, key).items()}
    out['seconds'] = dict(self.seconds)
    return out

  @classmethod
  def from_json(cls, d: Mapping[str, Any], where: str = '') -> ProbeResult:
    """A result from its JSON; `where` (the file) names it in errors."""
    deactivated = d.get('deactivated_loss')
    return cls(
        step=int(d['step']), loss={k: float(v) for k, v in d['loss'].items()},
        heldout_tokens={k: int(v) for k, v in d.get('heldout_tokens', {}).items()},
        neurons=Neurons.from_json(d.get('neurons', {})),
        lape=Lape.from_json(d['lape']) if 'lape' in d else None,
        deactivated_loss=None if deactivated is None else {
            k: {lang: float(x) for lang, x in v.items()} for k, v in deactivated.items()},
        lens={k: LensReading.from_json(v) for k, v in d.get('lens', {}).items()},
        aligned_lens={k: AlignedReading.from_json(v, where or f'probe result of step {d["step"]}')
                      for k, v in d.get('aligned_lens', {}).items()},
        solution_loss={k: SolutionLoss.from_json(v) for k, v in d.get('solution_loss', {}).items()},
        knowledge={k: KnowledgeReading.from_json(v) for k, v in d.get('knowledge', {}).items()},
        seconds={k: float(v) for k, v in d.get('seconds', {}).items()})


def save(run: RunDir, result: ProbeResult) -> None:
  """Writes the run's probes/<step>.json, atomically."""
  run.write_probe(result.step, result.to_json())


def load(run: RunDir, step: int) -> ProbeResult:
  """The run's probes/<step>.json as the typed record the probes wrote."""
  return ProbeResult.from_json(run.probe_json(step), run.probe_path(step))


def load_all(run: RunDir) -> list[ProbeResult]:
  """Every probes/<step>.json of the run, by step."""
  return [load(run, step) for step in run.probe_steps()]
