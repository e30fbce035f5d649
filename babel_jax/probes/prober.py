"""The compiled probes of one run and their fixed inputs: `Prober.probe(params, step)` measures a
step, as a ProbeResult (result.py).

Instruments, each one jitted program over inputs placed once:
- held-out statistics (neurons.py): per-language loss and LAPE activation counts over a fixed
  held-out sample, optionally again with each language's neurons zeroed;
- the logit lens on the probe set (lens.py), for real languages it covers;
- the aligned logit lens (aligned.py), for planted languages, on their held-out positions, reported
  per run for the planted languages it trains on;
- the solution loss (evaluation/solution_loss.py), for languages with hand-written solutions;
- planted knowledge (knowledge.py): the body loss of the corpus's synthetic facts, taught and
  untaught, per language that renders them and per planted copy of one.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import Any, Collection

import jax
import numpy as np

from babel_jax import data as data_lib
from babel_jax import io
from babel_jax.data import batch as batch_lib
from babel_jax.data import loader
from babel_jax.data import manifest as manifest_lib
from babel_jax.data import planted as planted_lib
from babel_jax.data import tokenizer as tok_lib
from babel_jax.evaluation import solution_loss
from babel_jax.probes import aligned as aligned_lib
from babel_jax.probes import knowledge as knowledge_lib
from babel_jax.probes import lens as lens_lib
from babel_jax.probes import neurons as neurons_lib
from babel_jax.probes import probe_set as probe_set_lib
from babel_jax.probes import result as result_lib
from babel_jax.probes.result import ProbeResult
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import sharding
from babel_jax.train import losses


def heldout_batches(cfg, workdir: str) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
  """A fixed held-out sample (data's validation split), probe.tokens_per_language tokens of each
  language; and the planted languages' id maps ({name: (Planted, map)})."""
  per_batch = cfg.probe.batch_size * cfg.data.seq_len
  n = math.ceil(cfg.probe.tokens_per_language * len(cfg.data.languages) / per_batch)
  source = loader.make_source(cfg, workdir=workdir, split='validation')
  batches = [next(source) for _ in range(n)]
  if hasattr(source, 'close'):
    source.close()
  return batches, source.planted


def _stack(rows: list[dict[str, np.ndarray]], batch_size: int) -> dict[str, np.ndarray]:
  """Rows of equal length -> [n_batches, batch_size, L], padded with empty rows (no targets,
  no language) to whole batches."""
  n = math.ceil(len(rows) / batch_size) * batch_size
  out = {}
  for k in rows[0]:
    a = np.full((n, *rows[0][k].shape), batch_lib.fill_value(k), rows[0][k].dtype)
    a[:len(rows)] = np.stack([r[k] for r in rows])
    out[k] = a.reshape(-1, batch_size, *rows[0][k].shape)
  return out


def _summed(fn):
  """fn(params, batch, *args) -> sums, turned into a function of a [n, B, L] stack of batches
  that sums them in one program (losses.scan_sum)."""
  def run(params, stacked, *args):
    return losses.scan_sum(lambda batch: fn(params, batch, *args), stacked)
  return run


class Prober:
  """The compiled probes and their fixed inputs; `probe(params)` gives one step's results."""

  def __init__(self, cfg, workdir: str, rt: runtime_lib.Runtime,
               dispatch_lock: threading.Lock | None = None):
    self.cfg, self.rt, self.model = cfg, rt, rt.model
    # Multi-device programs launched from two threads can reach the devices in different orders
    # and deadlock in their collectives; launches (not execution) are serialised with the
    # restore thread under this lock.
    self.lock = dispatch_lock or threading.Lock()
    self.languages = list(cfg.data.languages)
    self.primary = self.languages[0]
    self.abstract_params = rt.abstract_params
    self.lape: neurons_lib.LapeSettings = cfg.probe
    rep = sharding.replicated(rt.mesh)
    self._stacked_sh = jax.sharding.NamedSharding(
        rt.mesh, jax.sharding.PartitionSpec(None, *sharding.batch_sharding(rt.mesh).spec))
    self._in = (rt.param_shardings, self._stacked_sh)
    self._rep = rep
    batches, self.planted = heldout_batches(cfg, workdir)
    self._build_stats(batches)
    only = cfg.probe.only_heldout
    self.aligned_languages: list[str] = []  # the planted languages the aligned lens measures
    self._aligned = self._build_aligned(batches) if self.planted and not only else None
    self.probe_set = self._lens = self._solutions = self._knowledge = None
    self.knowledge_layout: knowledge_lib.Layout | None = None
    self.facts_language: str | None = None  # the language that teaches the corpus's facts
    if cfg.data.source == 'corpus' and not only:
      manifest = manifest_lib.load(data_lib.corpus_dir(cfg, workdir))
      tok, _ = tok_lib.load(data_lib.tokenizer_dir(cfg, workdir), manifest)
      self._build_lens(tok)
      if cfg.probe.solution_loss:
        self._build_solutions(tok)
      if cfg.probe.knowledge:
        self._build_knowledge(tok, manifest)
    if self._lens is None and not only:
      io.log('logit lens: skipped (needs data.source=corpus and probe-set prompts in '
             f'one of {self.languages[1:]})')

  def _jit(self, fn, *extra):
    return jax.jit(sharding.with_rules(_summed(fn)), in_shardings=(*self._in, *extra),
                   out_shardings=self._rep)

  def _put(self, stacked):
    return jax.device_put(stacked, self._stacked_sh)

  def _build_stats(self, batches: list[dict[str, np.ndarray]]) -> None:
    """Neuron statistics and held-out loss over the whole sample, as one compiled program."""
    self.heldout = self._put({k: np.stack([b[k] for b in batches]) for k in batches[0]})
    self.ones = self.rt.replicated(np.ones((self.model.cfg.num_layers, self.model.cfg.d_ff),
                                           np.float32))
    self._stats = self._jit(functools.partial(neurons_lib.neuron_stats, self.model,
                                              num_langs=len(self.languages)), self._rep)

  def _build_aligned(self, batches: list[dict[str, np.ndarray]]):
    """The aligned lens over the held-out rows that hold planted text; each planted language's
    id block comes from its spec (planted languages the model's vocabulary lacks are left out)."""
    vocab = self.model.cfg.vocab_size
    base, block_G = aligned_lib.id_blocks(self.planted, self.languages, vocab)
    self.aligned_languages = [lang for lang, k in zip(self.languages, block_G) if k > 0]
    if not self.aligned_languages:
      return None
    measured = [self.languages.index(name) for name in self.aligned_languages]
    rows = [{k: b[k][i] for k in b} for b in batches for i in range(len(b['tokens']))
            if np.isin(b['lang_ids'][i], measured).any()]
    inverse = planted_lib.inverse([self.planted[name][1] for name in self.aligned_languages],
                                  vocab)
    self._aligned_inputs = (self._put(_stack(rows, self.cfg.probe.batch_size)),
                            self.rt.replicated(inverse), self.rt.replicated(block_G))
    return self._jit(functools.partial(aligned_lib.aligned_stats, self.model, base=base,
                                       num_blocks=int(block_G.max()) + 1,
                                       num_langs=len(self.languages)), self._rep, self._rep)

  def _build_lens(self, tok) -> None:
    """The logit lens on the probe-set prompts of the run's real non-primary languages."""
    cfg = self.cfg
    path = cfg.probe.probe_set or probe_set_lib.DEFAULT_PATH
    covered = probe_set_lib.load_raw(path)['languages']
    wanted = [lang for lang in self.languages[1:] if lang in covered]
    if not wanted:
      return
    ps = self.probe_set = probe_set_lib.build_probe_set(tok, wanted, cfg.model.max_len, path,
                                              cfg.probe.max_prompts_per_pair)
    for problem in ps.problems[:10]:
      io.log(f'probe set: skipped {problem}')
    if len(ps.problems) > 10:
      io.log(f'probe set: ... {len(ps.problems)} prompts skipped in all')
    self._lens_inputs = self.rt.replicated(
        (ps.batch(), ps.last_P, ps.target_first_P, ps.primary_first_P))
    rep = self._rep
    self._lens = jax.jit(sharding.with_rules(functools.partial(lens_lib.lens_stats, self.model)),
                         in_shardings=(self.rt.param_shardings, rep, rep, rep, rep),
                         out_shardings=rep)

  def _build_solutions(self, tok) -> None:
    """The loss of hand-written correct HumanEval solutions, per language that has them."""
    # Only as long as the training rows: the model has not learnt later positions.
    rows, self._solution_kept = solution_loss.rows(tok, self.languages, self.cfg.data.seq_len,
                                                   tok.bos_id)
    if not rows:
      return
    length = max(len(r['tokens']) for r in rows)
    padded = [{k: np.pad(v, (0, length - len(v)), constant_values=batch_lib.fill_value(k))
               for k, v in r.items()} for r in rows]
    self._solution_inputs = self._put(_stack(padded, self.cfg.probe.batch_size))
    self._solutions = self._jit(functools.partial(losses.loss_sums, self.model,
                                                  num_langs=len(self.languages)))

  def _build_knowledge(self, tok, manifest: dict[str, Any]) -> None:
    """The body loss of the corpus's planted facts (knowledge.py), when it records any."""
    found = knowledge_lib.from_manifest(manifest)
    if found is None:
      io.log('planted knowledge: skipped (the corpus records no facts; corpus.facts)')
      return
    fact_set, self.facts_language = found
    if self.facts_language != self.primary:
      io.log(f'planted knowledge: the facts are taught in {self.facts_language}, not '
             f'the primary language {self.primary}; the reports read the primary\'s '
             'reading as retention')
    rows, layout = knowledge_lib.rows(tok, fact_set, self.languages, self.planted,
                                      self.cfg.data.seq_len, self.model.cfg.vocab_size,
                                      tok.bos_id, tok.eos_id)
    for lang, n in layout.dropped.items():
      io.log(f'planted knowledge: {n} fact pairs of {lang} start their body beyond '
             f'{self.cfg.data.seq_len} tokens; left out')
    if not rows:
      io.log(f'planted knowledge: skipped (no language of {self.languages} renders '
             'the facts)')
      return
    self.knowledge_layout = layout
    self._knowledge_inputs = self._put(_stack(knowledge_lib.pad(rows), self.cfg.probe.batch_size))
    self._knowledge = self._jit(functools.partial(knowledge_lib.row_sums, self.model,
                                                  num_rows=layout.rows))

  def _pass(self, params, mask) -> dict[str, np.ndarray]:
    with self.lock:
      total = self._stats(params, self.heldout, mask)
    return jax.device_get(total)

  def _deactivated(self, params, selection) -> dict[str, dict[str, float]]:
    """Every language's loss with each language's LAPE neurons zeroed (the causal check)."""
    out = {}
    for i, lang in enumerate(self.languages):
      member = selection['member_GxNxF'][i]
      if member.any():
        with self.lock:
          mask = self.rt.replicated(neurons_lib.mask_without(member))
        t = self._pass(params, mask)
        zeroed = t['loss_sum_G'] / np.maximum(t['loss_tokens_G'], 1)
        out[lang] = dict(zip(self.languages, zeroed.tolist()))
    return out

  def _run(self, fn, params, *inputs):
    with self.lock:
      out = fn(params, *inputs)
    return jax.device_get(out)

  def probe(self, params, step: int, trained: Collection[str] | None = None) -> ProbeResult:
    """Every instrument on the parameters of checkpoint `step`. The aligned lens reports the
    planted languages among `trained` (the run's languages with weight; None: all): a run that
    does not train on a control has no working language to read for it."""
    seconds, t = {}, time.perf_counter()
    totals = self._pass(params, self.ones)
    prob_NxFxG = totals['active_NxFxG'] / np.maximum(totals['tokens_G'], 1)
    selection = neurons_lib.lape(prob_NxFxG, self.lape)
    loss = totals['loss_sum_G'] / np.maximum(totals['loss_tokens_G'], 1)
    out: dict[str, Any] = {
        'loss': dict(zip(self.languages, loss.tolist())),
        'heldout_tokens': dict(zip(self.languages, totals['tokens_G'].astype(int).tolist())),
        'neurons': neurons_lib.summarise_neurons(selection['member_GxNxF'], self.languages, self.primary),
        'lape': result_lib.Lape(filter_value=selection['filter_value'],
                                activation_bar=selection['activation_bar'],
                                filter_rate=self.lape.filter_rate, top_rate=self.lape.top_rate,
                                activation_bar_ratio=self.lape.activation_bar_ratio),
    }
    seconds['stats'], t = time.perf_counter() - t, time.perf_counter()
    if self.cfg.probe.deactivate:
      out['deactivated_loss'] = self._deactivated(params, selection)
      seconds['deactivation'], t = time.perf_counter() - t, time.perf_counter()
    if self._lens is not None:
      out['lens'] = lens_lib.summarise_lens(self._run(self._lens, params, *self._lens_inputs),
                                       self.probe_set.languages)
      seconds['lens'], t = time.perf_counter() - t, time.perf_counter()
    report = [lang for lang in self.aligned_languages if trained is None or lang in trained]
    if report:
      totals = self._run(self._aligned, params, *self._aligned_inputs)
      out['aligned_lens'] = aligned_lib.summarise_aligned(totals, self.languages, report)
      seconds['aligned_lens'], t = time.perf_counter() - t, time.perf_counter()
    if self._solutions is not None:
      sums = self._run(self._solutions, params, self._solution_inputs)
      out['solution_loss'] = {
          lang: result_lib.SolutionLoss.from_json(v) for lang, v in solution_loss.summarise_solution_loss(
              sums['lang_loss_sum'], sums['lang_count'], self.languages,
              self._solution_kept).items()}
      seconds['solution_loss'], t = time.perf_counter() - t, time.perf_counter()
    if self._knowledge is not None:
      sums = self._run(self._knowledge, params, self._knowledge_inputs)
      # Planted copies are read only in runs that train on them (as the aligned lens): a run
      # that never sees a control's ids has nothing of the facts to carry into them.
      shown = [lang for lang in self.knowledge_layout.languages
               if lang not in self.planted or trained is None or lang in trained]
      out['knowledge'] = knowledge_lib.summarise_knowledge(sums['loss_R'], sums['count_R'],
                                                 self.knowledge_layout, shown)
      seconds['knowledge'] = time.perf_counter() - t
    return ProbeResult(step=step, seconds=seconds, **out)
