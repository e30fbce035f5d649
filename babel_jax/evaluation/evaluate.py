"""`--mode eval`: multilingual HumanEval on a run's checkpoints: sample, execute, score.

Per checkpoint (parameters only, like the probes): for each language, the translated prompts are
sampled `eval.samples` times (greedy when eval.temperature is 0), cut at the language's stop
sequences, assembled with the tests and executed in the sandbox by `eval.workers` parallel
workers. Output, written atomically under <workdir>/eval/<step>/: completions.jsonl (one line per
sample), results.json (pass@k, greedy pass@1, outcome counts, per-problem results, programs per
second) and per_problem.json ({language: {task: solved}}, read by the probe report for |P∩C|/|C|).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from typing import Any

import jax

from babel_jax import config as config_lib
from babel_jax import data as data_lib
from babel_jax import io
from babel_jax.data import batch as batch_lib
from babel_jax.data import manifest as manifest_lib
from babel_jax.data import tokenizer as tok_lib
from babel_jax.errors import EvaluationError
from babel_jax.evaluation import execution, passk, sampling, sandbox
from babel_jax.evaluation.languages import LANGUAGES, Language, program, truncate
from babel_jax.runtime import factory as runtime_lib
from babel_jax.runtime import walk as walk_lib
from babel_jax.runtime.rundir import RunDir

DATA_DIR = os.path.join(os.path.dirname(__file__), 'data')


def load_records(language: str, problems: int = 0) -> list[dict[str, Any]]:
  """The generated problems of one language (translated or not), in task order."""
  path = os.path.join(DATA_DIR, f'humaneval_{language}.jsonl')
  if not os.path.exists(path):
    raise EvaluationError(f'no HumanEval translation for {language!r} ({path}); '
                          f'have {sorted(LANGUAGES)}')
  with open(path) as f:
    records = [json.loads(line) for line in f]
  return records[:problems or None]


class Executor:
  """Runs assembled programs in sandboxes, `workers` at a time."""

  def __init__(self, workers: int, limits: sandbox.Limits, compile_timeout_s: float,
               run_timeout_s: float):
    self.pool = concurrent.futures.ThreadPoolExecutor(workers)
    self.limits, self.compile_s, self.run_s = limits, compile_timeout_s, run_timeout_s

  def run(self, lang: Language, sources: list[str]) -> list[tuple[str, str]]:
    def one(source):
      outcome, tail = execution.run_program(lang.name, source, self.run_s, self.compile_s,
                                            self.limits)
      return outcome, tail[-1000:]
    return list(self.pool.map(one, sources))


def score(language: str, records: list[dict], outcomes: dict[str, list[str]], ks: list[int],
          seconds: float, programs: int) -> dict[str, Any]:
  """pass@k (only k every problem supports), outcome counts and per-problem results."""
  counts = {o: 0 for o in (*sandbox.OUTCOMES, 'untranslated', 'prompt_too_long')}
  per_problem = {}
  for rec in records:
    got = outcomes.get(rec['task_id'], [])
    for o in got:
      counts[o] += 1
    per_problem[rec['task_id']] = {'n': len(got), 'passed': got.count('passed'),
                                   'outcomes': got}
    counts['untranslated'] += not rec.get('translated')  # per problem: it has no samples
  samples = {t: (p['n'], p['passed']) for t, p in per_problem.items() if p['n']}
  # Untranslated problems count as unsolved: pass@k is over every problem of the benchmark.
  for t, p in per_problem.items():
    if not p['n']:
      samples[t] = (max(ks), 0)
  return {'language': language, 'problems': len(records),
          'translated': sum(1 for r in records if r.get('translated')),
          'pass_at_k': {f'pass@{k}': passk.mean_pass_at_k(samples, k) for k in ks},
          'outcomes': counts, 'per_problem': per_problem,
          'programs_per_s': programs / max(seconds, 1e-9), 'execute_s': seconds}


def evaluate(cfg, params, sampler: sampling.Sampler, tokenizer, executor: Executor,
             languages: list[str], rng: jax.Array) -> tuple[dict, list[dict]]:
  """Samples and executes every language's problems with these parameters."""
  e = cfg.eval
  settings = sampling.SampleSettings(max_new_tokens=e.max_new_tokens, temperature=e.temperature,
                                     top_p=e.top_p, chunk=min(32, e.max_new_tokens))
  ks = sorted(set(e.k))
  results, completions = {}, []
  for lang_name in languages:
    lang = LANGUAGES[lang_name]
    records = load_records(lang_name, e.problems)
    outcomes: dict[str, list[str]] = {}
    todo = [r for r in records if r.get('translated')]
    limit = cfg.model.max_len - settings.steps  # the cache holds the prompt and every step
    runnable, sources, meta = [], [], []
    for rec in todo:
      ids = [getattr(tokenizer, 'bos_id', tok_lib.BOS), *tokenizer.encode(rec['prompt'])]
      if len(ids) > limit:
        outcomes[rec['task_id']] = ['prompt_too_long'] * e.samples
        continue
      runnable.append((rec, ids))
    stop_fn = lambda stops: (lambda row: any(s in tokenizer.decode(row) for s in stops))  # noqa
    for start in range(0, len(runnable), e.batch_size):
      batch = runnable[start:start + e.batch_size]
      for sample in range(e.samples):
        rng, sub = jax.random.split(rng)
        rows = sampler.generate(params, [ids for _, ids in batch], settings, sub,
                                stop_fn=stop_fn(lang.stop))
        for (rec, _), row in zip(batch, rows):
          text = truncate(tokenizer.decode(row), lang.stop)
          sources.append(program(rec, text))
          meta.append((rec['task_id'], sample, text))
    t = time.perf_counter()
    ran = executor.run(lang, sources)
    seconds = time.perf_counter() - t
    for (task, sample, text), (outcome, tail) in zip(meta, ran):
      outcomes.setdefault(task, []).append(outcome)
      completions.append({'language': lang_name, 'task_id': task, 'sample': sample,
                          'completion': text, 'outcome': outcome, 'output_tail': tail})
    results[lang_name] = score(lang_name, records, outcomes, ks, seconds, len(sources))
    r = results[lang_name]
    io.log(f'eval {lang_name}: ' + ', '.join(
        f'{k} {v:.3f}' if v is not None else f'{k} n/a' for k, v in r['pass_at_k'].items()) +
        f'; {r["translated"]}/{r["problems"]} translated; outcomes '
        + ', '.join(f'{k} {v}' for k, v in r['outcomes'].items() if v) +
        f'; {r["programs_per_s"]:.1f} programs/s')
  return results, completions


def eval_languages(cfg) -> list[str]:
  wanted = cfg.eval.languages or [lang for lang in cfg.data.languages if lang in LANGUAGES]
  out = []
  for lang in wanted:
    if lang not in LANGUAGES:
      raise EvaluationError(f'eval.languages names {lang!r}; have {sorted(LANGUAGES)}')
    missing = LANGUAGES[lang].missing_tools()
    if missing:
      io.log(f'eval: skipping {lang}: toolchain {missing} not installed '
             '(launch/setup.sh installs it as root)')
      continue
    out.append(lang)
  if not out:
    raise EvaluationError(f'no language to evaluate (eval.languages='
                          f'{config_lib.joined(cfg.eval.languages)!r}, data.languages='
                          f'{config_lib.joined(cfg.data.languages)!r})')
  return out


def walk(cfg, workdir: str) -> list[int]:
  """Evaluates every selected checkpoint that has no results yet; returns the steps done."""
  cfg = config_lib.validate(cfg)
  if cfg.data.source != 'corpus':
    raise EvaluationError('--mode eval needs a tokenizer: data.source must be corpus')
  languages = eval_languages(cfg)
  io.log(f'eval: sandbox isolation {sandbox.isolation_note()}')
  tok, _ = tok_lib.load(data_lib.tokenizer_dir(cfg, workdir),
                        manifest_lib.load(data_lib.corpus_dir(cfg, workdir)))
  run = RunDir(workdir)
  checkpoints = walk_lib.Walk(run, cfg.model.to_dict(), 'evaluate')
  rt = runtime_lib.build_runtime(cfg)
  sampler = sampling.Sampler(rt.model, tok.eos_id, vocab_limit=tok.vocab_size,
                             zero_is_token=batch_lib.zero_is_token(tok))
  e = cfg.eval
  executor = Executor(e.workers, sandbox.Limits(cpu_s=int(e.run_timeout_s) + 1,
                                                memory_mb=e.memory_mb, disk_mb=e.disk_mb),
                      e.compile_timeout_s, e.run_timeout_s)
  done = []
  # Sampling launches multi-device programs: the next checkpoint is restored after this one.
  for r in checkpoints.restored(rt.abstract_params, e.steps, run.evaluated, 'eval.steps',
                                prefetch=False):
    t = time.perf_counter()
    results, completions = evaluate(cfg, r.params, sampler, tok, executor, languages,
                                    jax.random.PRNGKey(cfg.seed + r.step))
    solved = {lang: {task: p['passed'] > 0 for task, p in rr['per_problem'].items()}
              for lang, rr in results.items()}
    run.write_eval(r.step, {
        'completions.jsonl': ''.join(json.dumps(c) + '\n' for c in completions),
        'per_problem.json': json.dumps(solved),
        'results.json': json.dumps({'step': r.step, 'seconds': time.perf_counter() - t,
                                    'settings': e.to_dict(), 'results': results}, indent=1)})
    done.append(r.step)
  return done
