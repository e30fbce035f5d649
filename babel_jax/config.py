"""Config schema: the one place every field, its type and its default are declared.

Config files in `configs/` start from `default_config()` and change fields; `validate` then
rejects unknown fields, wrong types and impossible values with messages that name the field, so
a typo fails before any work starts instead of being silently ignored. Comma-separated list
fields are parsed by `items` alone. This module imports no other babel_jax module but the errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

import ml_collections

from babel_jax.errors import ConfigError

MESH_AXES = ('data', 'fsdp', 'tensor')
COLUMN_ROLES = ('content', 'lang', 'path', 'ext')  # dataset shard columns (data/shards.py)
PLANTED_KINDS = ('clone', 'partial', 'scrambled')  # planted control languages (data/planted.py)


def default_config() -> ml_collections.ConfigDict:
  """Every config field with its default. Sizes here are CPU-friendly."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.vocab_size = 512
  c.model.d_model = 64
  c.model.num_layers = 2
  c.model.num_heads = 4
  c.model.d_ff = 0  # 0 means 4 * d_model (GELU) or 8/3 * d_model rounded to 64 (SwiGLU).
  c.model.max_len = 128
  c.model.norm = 'layernorm'  # 'layernorm' (GPT-2) or 'rmsnorm' (Llama).
  c.model.positions = 'learned'  # 'learned' (GPT-2) or 'rotary' (Llama).
  c.model.mlp = 'gelu'  # 'gelu' (GPT-2, tanh form), 'gelu_exact' (GPT-NeoX) or 'swiglu' (Llama).
  c.model.use_bias = True  # GPT-2 has biases; Llama-style models usually do not.
  c.model.tie_embeddings = True
  c.model.rope_base = 10000.0
  c.model.num_kv_heads = 0  # key/value heads; 0 = num_heads, fewer = grouped-query (Llama).
  c.model.rotary_fraction = 1.0  # head dims that rotary rotates (GPT-NeoX rotary_pct).
  c.model.parallel_residual = False  # x + attn(norm(x)) + mlp(norm(x)) (GPT-NeoX).
  c.model.norm_eps = 1e-6  # epsilon of every norm (GPT-2 and Pythia 1e-5, Llama 1e-5 or 1e-6).
  c.model.attention_impl = 'auto'  # 'auto', 'xla', 'cudnn' or 'chunked' (fast on CPU).
  c.model.attention_chunk = 128  # query block size of the 'chunked' implementation.
  c.model.dtype = 'float32'  # compute dtype; parameters stay in param_dtype.
  c.model.param_dtype = 'float32'
  c.model.remat = 'none'  # 'none', 'full' or 'dots' (save matmul outputs only).
  c.model.scan_layers = False
  c.model.init_std = 0.02

  c.data = ml_collections.ConfigDict()
  c.data.source = 'synthetic'  # 'synthetic' or 'corpus' (the grain pipeline over --mode corpus).
  c.data.languages = 'python,php,go'  # comma-separated; the first is the primary language.
  c.data.weights = ''  # comma-separated mixture weights; empty means uniform.
  c.data.target_tokens = ''  # or comma-separated target tokens per language (sets the weights).
  c.data.mixture = ''  # or a MixtureSpec JSON file; overrides weights and target_tokens.
  c.data.seq_len = 128
  c.data.mean_doc_len = 48  # synthetic source: mean document length in tokens.
  c.data.corpus_dir = ''  # '' means <workdir>/corpus.
  c.data.tokenizer_dir = ''  # '' means <corpus_dir>/tokenizer.
  c.data.read_threads = 2  # grain threads reading and tokenizing documents.
  c.data.prefetch = 4  # batches prepared ahead by a background thread.
  # Planted knowledge (data/facts.py): the share of the facts' language's training documents
  # that are fact documents, when the corpus records facts (corpus.facts).
  c.data.facts_rate = 0.05

  c.corpus = ml_collections.ConfigDict()
  c.corpus.sources = 'python_stdlib,jdk_src,cpp_headers,npm_js'  # see data/sources.py
  c.corpus.paths = ''  # extra comma-separated 'PATH' or 'PATH=LANG' (directories or archives).
  c.corpus.debian_dir = ''  # launch/fetch_debian_sources.sh output; '' = its default.
  c.corpus.languages = ''  # keep only these (comma-separated); '' keeps every language found.
  c.corpus.extensions = ''  # extra '.ext=lang' pairs extending the built-in language map.
  c.corpus.max_bytes_per_language = 0  # deterministic sample by content hash; 0 = all.
  c.corpus.max_files_per_language = 0
  c.corpus.min_file_bytes = 64
  c.corpus.max_file_bytes = 1_000_000
  c.corpus.max_line_length = 1000
  c.corpus.max_mean_line_length = 120.0
  c.corpus.min_alnum_fraction = 0.25
  c.corpus.near_dup_threshold = 0.85  # MinHash Jaccard; 0 disables near-dedup.
  c.corpus.minhash_perms = 128
  c.corpus.val_fraction = 0.05
  c.corpus.shard_mb = 64
  c.corpus.columns = ''  # dataset shards: 'content=COL,lang=COL,path=COL,ext=COL' (data/shards.py)
  c.corpus.workers = 1  # processes that read and MinHash; the output does not depend on it.
  c.corpus.max_tokens_per_language = 0.0  # token budget, sampled like the byte one; 0 = none.
  c.corpus.max_tokens_by_language = ''  # 'python=11e9,php=23e9': overrides the one above.
  c.corpus.token_model = ''  # sentencepiece model counting tokens; '' = bytes / bytes_per_token.
  c.corpus.bytes_per_token = 3.5
  c.corpus.dedup = 'exact,near'  # or 'exact', 'near', 'none' (datasets that arrive deduplicated).
  # Planted languages (data/planted.py): controls with a known answer, made from a real
  # language's tokens: comma-separated '<lang>_clone', '<lang>_partial', '<lang>_scrambled'.
  c.corpus.planted = ''
  c.corpus.planted_seed = 0
  c.corpus.planted_share = 1.0  # '_partial': share of identifier / keyword pieces remapped.
  # Planted knowledge: this many synthetic facts (and as many untaught twins), recorded in the
  # manifest and taught in corpus.facts_language only (docs/facts.md); 0 = none.
  c.corpus.facts = 0
  c.corpus.facts_seed = 0
  c.corpus.facts_language = 'python'

  c.tokenizer = ml_collections.ConfigDict()
  c.tokenizer.vocab_size = 0  # 0 means model.vocab_size.
  c.tokenizer.sample_bytes_per_language = 4_000_000  # language-balanced training sample.
  c.tokenizer.character_coverage = 0.9995  # rarer characters fall back to bytes.
  c.tokenizer.max_piece_length = 16

  c.train = ml_collections.ConfigDict()
  c.train.steps = 100
  c.train.batch_size = 8  # global batch, in sequences, per optimizer step.
  c.train.grad_accum = 1  # micro-batches per step; batch_size must divide by it.
  c.train.lr = 3e-3
  c.train.warmup_steps = 10
  c.train.min_lr_ratio = 0.1  # cosine decays to lr * min_lr_ratio at the last step.
  c.train.weight_decay = 0.1
  c.train.b1 = 0.9
  c.train.b2 = 0.95
  c.train.eps = 1e-8
  c.train.clip_norm = 1.0  # 0 disables clipping.
  c.train.log_every = 10
  c.train.peak_flops = 0.0  # FLOP/s of all devices together for MFU; 0 measures it.
  c.train.init_from = ''  # workdir or checkpoint dir of another run: continual pre-training.
  c.train.init_step = -1  # its checkpoint step; -1 means the latest.
  c.train.stop_after = 0  # >0: exit after this many steps of this process (tests, preemption drills).

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 50
  c.checkpoint.log_spaced = 16  # permanent log-spaced checkpoints over the run (dense early).
  c.checkpoint.keep_every = 0  # >0: multiples of this step are permanent too.
  c.checkpoint.keep_last = 2  # latest checkpoints kept besides the permanent ones.
  c.checkpoint.async_save = True
  c.checkpoint.initial = False  # also keep step 0 of a fresh run (the study's reference runs).
  # 'latest': only the newest checkpoint keeps the optimizer state (all a resume needs); the
  # others keep params, meta and data, a third of the disk with Adam (dense studies on a GPU).
  c.checkpoint.optimizer_state = 'all'

  c.probe = ml_collections.ConfigDict()
  c.probe.steps = ''  # checkpoints to probe: '' all, 'A:B' a range (inclusive), 'A:B:S' a stride.
  c.probe.tokens_per_language = 8192  # held-out tokens per language for LAPE and the loss.
  c.probe.batch_size = 8
  c.probe.filter_rate = 0.95  # LAPE defaults follow Tang et al. 2024.
  c.probe.top_rate = 0.01
  c.probe.activation_bar_ratio = 0.95
  c.probe.deactivate = True  # also measure per-language loss with each neuron set zeroed.
  c.probe.probe_set = ''  # '' means babel_jax/probes/probe_set.json.
  c.probe.max_prompts_per_pair = 0  # 0 uses every prompt.
  c.probe.solution_loss = True  # the loss of hand-written HumanEval solutions (needs a tokenizer).
  c.probe.knowledge = True  # the loss of planted facts' bodies, taught and untaught (corpus.facts).
  c.probe.only_heldout = False  # only the held-out statistics (loss, LAPE): no lens, no solutions.
  c.probe.follow_poll_s = 10.0
  c.probe.follow_timeout_s = 3600.0  # --follow gives up after this long without a new step.

  # Interpretation of the measured curves (babel_jax/dynamics, docs/method.md): nothing here
  # changes a measurement, so probes and evaluation never read this section.
  c.dynamics = ml_collections.ConfigDict()
  c.dynamics.language = ''  # the new language L of a run; '' means the heaviest non-primary one.
  # New-language performance curve for stages and Algorithm 1: 'eval' (HumanEval problems
  # solved), 'solutions' (negative loss of correct HumanEval solutions given their prompts),
  # 'lens' (final-layer probability of L's identifiers on the probe set, or of the planted ids),
  # 'loss' (negative held-out loss of L), or 'auto': the first that exists and is not flat.
  c.dynamics.performance = 'auto'
  c.dynamics.smooth_window = 3  # checkpoints in the moving average used by stage detection.
  c.dynamics.slope_tolerance = 0.1  # |slope| (relative to the curve's mean slope) of 'stable'.
  # Eq. 1, P(l) = (alpha - l) / (alpha - beta). beta: 'first' (the held-out loss at the start of
  # continual training, P = 1) or 'smoothed' (the first point of the smoothed loss). alpha:
  # 'tail' (the mean of the last fit_tail losses) or 'stabilization' (the mean smoothed loss
  # from the start of Stabilization; 'tail' when no Stabilization is found).
  c.dynamics.eq1_beta = 'first'
  c.dynamics.eq1_alpha = 'tail'
  c.dynamics.fit_tail = 3
  c.dynamics.python_specific = ''  # JSON list of task ids P (Python-only solves): |P∩C|/|C|.

  c.eval = ml_collections.ConfigDict()
  c.eval.languages = ''  # '' means the run's data.languages that have a translation.
  c.eval.steps = ''  # checkpoints, as probe.steps.
  c.eval.problems = 0  # the first N problems; 0 means all 164.
  c.eval.samples = 1  # completions per problem (pass@k needs k of them).
  c.eval.temperature = 0.0  # 0 is greedy (paper-style pass@1).
  c.eval.top_p = 0.95
  c.eval.max_new_tokens = 256
  c.eval.batch_size = 16
  c.eval.k = '1'  # comma-separated k of pass@k (reported where every problem has k samples).
  c.eval.workers = 2  # programs executed in parallel, each in its own sandbox.
  c.eval.compile_timeout_s = 60.0
  c.eval.run_timeout_s = 10.0
  c.eval.memory_mb = 2048  # sandbox address space (JVM, mono and Go need about 2 GB).
  c.eval.disk_mb = 256  # all one program may write (its directory and /tmp), held in memory.

  c.experiment = ml_collections.ConfigDict()  # --mode experiment: the paper's whole study.
  c.experiment.new_languages = ''  # '' means data.languages[1:]; data.languages[0] is primary.
  c.experiment.primary_steps = 0  # phase 1 steps; 0 means train.steps.
  c.experiment.continual_steps = 0  # phase 2 steps per new language; 0 means train.steps.
  c.experiment.continual_lr = 0.0  # 0 means train.lr.
  c.experiment.continual_checkpoints = 12  # evenly spaced (plus log-spaced ones and step 0).
  c.experiment.scratch_steps = 0  # phase 5 steps per run; 0 means train.steps.
  c.experiment.seeds = 3  # phase 5 runs per mixture: seed, seed + 1, ...
  c.experiment.original = 'natural'  # the baseline mixture: 'natural', 'uniform', 'temperature'
  #                                    or 'config' (data.weights / target_tokens / mixture).
  c.experiment.temperature = 2.0  # for original = 'temperature'.
  c.experiment.primary_tokens = 0.0  # Algorithm 1's Python budget; 0 = the corpus's train tokens.
  c.experiment.fit_fallback = 'original'  # a language whose curves cannot be fitted keeps its
  #                                         original token share ('original'), or stop ('raise').
  c.experiment.evaluate = True  # HumanEval in phases 3 and 6 (needs data.source = corpus).
  # HumanEval on every checkpoint of the continual runs (phase 3); False keeps it to the
  # comparison (phase 6) and leaves the performance curve to the solution loss.
  c.experiment.evaluate_continual = True
  # Planted control languages studied beside the real new languages (data/planted.py): some of
  # 'clone,partial,scrambled'. Each gets continual and reference runs, not a mixture share.
  c.experiment.controls = ''
  c.experiment.reference = True  # from-scratch runs on each new language: effective transfer.
  c.experiment.reference_seeds = 0  # reference runs per language; 0 = experiment.seeds.
  # Reference runs are this many times as long as a continual run (Hernandez et al.'s D_E must
  # reach the continual run's loss; a shorter one leaves D_E censored, a lower bound only).
  c.experiment.reference_factor = 4

  c.calibrate = ml_collections.ConfigDict()  # --mode calibrate: the controls at several scales.
  # Comma-separated MULTIPLIER@WIDTH: continual steps x MULTIPLIER (of experiment.continual_steps)
  # on a model of d_model WIDTH; listed from the cheapest. Each is a study of the controls alone.
  c.calibrate.scales = '1@64,4@64,16@64,1@128,4@128'

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1  # -1 takes all devices left after the other axes.
  c.mesh.fsdp = 1
  c.mesh.tensor = 1
  c.mesh.num_devices = 0  # 0 uses every device; >0 uses the first N (e.g. 1 for a baseline).
  c.mesh.preset = ''  # 'v4-32', 'v5p-64', 'v5e-256', '8xh100', 'h100' or 'h200' (sharding.PRESETS)
  #                     sets the mesh.
  c.mesh.device_memory_gb = 0.0  # for --mode plan; 0 takes the preset's (or skips the check).
  return c


def _check_schema(cfg: Any, ref: Any, path: str) -> None:
  for key in cfg.keys():
    name = f'{path}.{key}' if path else key
    if key not in ref:
      known = ', '.join(sorted(ref.keys()))
      raise ConfigError(f'unknown config field {name!r}; known fields here: {known}')
    value, expected = cfg[key], ref[key]
    if isinstance(expected, ml_collections.ConfigDict):
      if not isinstance(value, ml_collections.ConfigDict):
        raise ConfigError(f'config field {name!r} must be a section, got {value!r}')
      _check_schema(value, expected, name)
      continue
    ok = isinstance(value, type(expected))
    if isinstance(expected, float) and isinstance(value, int) and not isinstance(value, bool):
      ok = True
    if isinstance(expected, int) and isinstance(value, bool):
      ok = isinstance(expected, bool)
    if not ok:
      raise ConfigError(f'config field {name!r} must be {type(expected).__name__}, '
                        f'got {type(value).__name__} {value!r}')


def _choice(cfg, name: str, options: tuple[str, ...]) -> None:
  section, field = name.split('.')
  value = cfg[section][field]
  if value not in options:
    raise ConfigError(f'config field {name!r} is {value!r}; expected one of {options}')


def _positive(cfg, *names: str, allow_zero: bool = False) -> None:
  for name in names:
    section, field = name.split('.')
    value = cfg[section][field]
    if value < 0 or (value == 0 and not allow_zero):
      bound = '>= 0' if allow_zero else '> 0'
      raise ConfigError(f'config field {name!r} must be {bound}, got {value}')


def items(text: str) -> tuple[str, ...]:
  """A comma-separated config field as its non-empty, stripped items."""
  return tuple(s.strip() for s in text.split(',') if s.strip())


def languages(cfg) -> tuple[str, ...]:
  """data.languages; the first is the primary language."""
  return items(cfg.data.languages)


def pairs(text: str, name: str) -> dict[str, str]:
  """'a=b,c=d' -> {'a': 'b', 'c': 'd'}: a comma-separated KEY=VALUE field, each key once."""
  out = {}
  for item in items(text):
    key, sep, value = (s.strip() for s in item.partition('='))
    if not sep or not key or key in out:
      raise ConfigError(f'{name} entry {item!r} must look like KEY=VALUE, each key once')
    out[key] = value
  return out


def budgets(text: str, name: str) -> dict[str, int]:
  """'python=11e9,php=23e9' -> {'python': 11_000_000_000, ...}: positive amounts per language."""
  out = {}
  for key, value in pairs(text, name).items():
    try:
      amount = float(value)
    except ValueError:
      amount = -1.0
    if not amount > 0 or not math.isfinite(amount):
      raise ConfigError(f'{name} entry {key}={value!r} must look like language=NUMBER (> 0, '
                        'e.g. python=11e9)')
    out[key] = int(amount)
  return out


def numbers(cfg, name: str) -> tuple[float, ...]:
  """A comma-separated list of numbers (e.g. data.weights), checked: finite and >= 0."""
  section, field = name.split('.')
  text = cfg[section][field]
  try:
    values = tuple(float(v) for v in items(text))
  except ValueError as e:
    raise ConfigError(f'{name} must be comma-separated numbers, got {text!r}') from e
  bad = [v for v in values if not math.isfinite(v) or v < 0]
  if bad:
    raise ConfigError(f'{name} must hold finite numbers >= 0, got {text!r}')
  return values


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks fields, types and values against `default_config()`; returns cfg."""
  _check_schema(cfg, default_config(), '')
  _check_ranges(cfg)
  _check_consistency(cfg)
  _check_lists(cfg)
  return cfg


def _check_ranges(cfg) -> None:
  """Each numeric field within its bounds and each choice among its options."""
  _positive(cfg, 'model.vocab_size', 'model.d_model', 'model.num_layers', 'model.num_heads',
            'model.max_len', 'model.attention_chunk', 'model.norm_eps', 'data.seq_len', 'train.steps',
            'train.batch_size',
            'train.grad_accum', 'train.log_every', 'checkpoint.every_steps')
  _positive(cfg, 'model.d_ff', 'train.warmup_steps', 'train.lr', 'train.clip_norm',
            'train.peak_flops', 'checkpoint.log_spaced', 'checkpoint.keep_last', 'checkpoint.keep_every',
            'train.stop_after', 'model.num_kv_heads', 'mesh.fsdp', 'mesh.tensor', 'mesh.num_devices',
            allow_zero=True)
  _choice(cfg, 'model.norm', ('layernorm', 'rmsnorm'))
  _choice(cfg, 'model.positions', ('learned', 'rotary'))
  _choice(cfg, 'model.mlp', ('gelu', 'gelu_exact', 'swiglu'))
  _choice(cfg, 'model.remat', ('none', 'full', 'dots'))
  _choice(cfg, 'checkpoint.optimizer_state', ('all', 'latest'))
  _choice(cfg, 'model.attention_impl', ('auto', 'xla', 'cudnn', 'chunked'))
  _choice(cfg, 'model.dtype', ('float32', 'bfloat16'))
  _choice(cfg, 'model.param_dtype', ('float32', 'bfloat16'))
  _choice(cfg, 'data.source', ('synthetic', 'corpus'))
  _positive(cfg, 'data.read_threads', 'data.prefetch', 'corpus.max_bytes_per_language',
            'corpus.max_files_per_language', 'corpus.min_file_bytes', 'tokenizer.vocab_size',
            allow_zero=True)
  _positive(cfg, 'corpus.max_file_bytes', 'corpus.max_line_length', 'corpus.minhash_perms',
            'corpus.shard_mb', 'tokenizer.sample_bytes_per_language', 'tokenizer.max_piece_length')
  _positive(cfg, 'probe.tokens_per_language', 'probe.batch_size', 'dynamics.smooth_window',
            'dynamics.fit_tail', 'eval.samples', 'eval.max_new_tokens', 'eval.batch_size', 'eval.workers',
            'eval.compile_timeout_s', 'eval.run_timeout_s', 'eval.memory_mb')
  _positive(cfg, 'probe.max_prompts_per_pair', 'dynamics.slope_tolerance', 'probe.follow_poll_s',
            'probe.follow_timeout_s', allow_zero=True)
  _positive(cfg, 'eval.disk_mb')
  _choice(cfg, 'dynamics.performance', ('auto', 'eval', 'solutions', 'knowledge', 'lens', 'loss'))
  _choice(cfg, 'dynamics.eq1_beta', ('first', 'smoothed'))
  _choice(cfg, 'dynamics.eq1_alpha', ('tail', 'stabilization'))
  _choice(cfg, 'experiment.original', ('natural', 'uniform', 'temperature', 'config'))
  _choice(cfg, 'experiment.fit_fallback', ('original', 'raise'))
  _positive(cfg, 'experiment.continual_checkpoints', 'experiment.seeds',
            'experiment.temperature', 'experiment.reference_factor')
  _positive(cfg, 'experiment.primary_steps', 'experiment.continual_steps',
            'experiment.reference_seeds',
            'experiment.continual_lr', 'experiment.scratch_steps', 'experiment.primary_tokens',
            allow_zero=True)
  for field in ('filter_rate', 'top_rate', 'activation_bar_ratio'):
    if not 0.0 < cfg.probe[field] < 1.0:
      raise ConfigError(f'probe.{field} must be in (0, 1), got {cfg.probe[field]}')
  if not 0.0 <= cfg.corpus.val_fraction < 1.0:
    raise ConfigError(f'corpus.val_fraction must be in [0, 1), got {cfg.corpus.val_fraction}')
  _positive(cfg, 'corpus.workers', 'corpus.bytes_per_token')
  _positive(cfg, 'corpus.max_tokens_per_language', allow_zero=True)
  columns = pairs(cfg.corpus.columns, 'corpus.columns')
  if not set(columns) <= set(COLUMN_ROLES) or not all(columns.values()):
    raise ConfigError(f'corpus.columns={cfg.corpus.columns!r}: entries must look like '
                      f'ROLE=COLUMN with ROLE one of {", ".join(COLUMN_ROLES)}, each at most once')
  budgets(cfg.corpus.max_tokens_by_language, 'corpus.max_tokens_by_language')
  modes = set(items(cfg.corpus.dedup))
  if modes != {'none'} and not (modes and modes <= {'exact', 'near'}):
    raise ConfigError(f"corpus.dedup is {cfg.corpus.dedup!r}; expected 'exact,near', 'exact', "
                      "'near' or 'none'")
  if not 0.0 <= cfg.corpus.near_dup_threshold <= 1.0:
    raise ConfigError(f'corpus.near_dup_threshold must be in [0, 1], got '
                      f'{cfg.corpus.near_dup_threshold}')
  if not 0.0 <= cfg.train.min_lr_ratio <= 1.0:
    raise ConfigError(f'train.min_lr_ratio must be in [0, 1], got {cfg.train.min_lr_ratio}')
  if cfg.mesh.data == 0 or cfg.mesh.data < -1:
    raise ConfigError(f'mesh.data must be -1 (fill) or > 0, got {cfg.mesh.data}')


def _check_consistency(cfg) -> None:
  """Fields that constrain each other: shapes, vocabularies, batch splits."""
  m, t = cfg.model, cfg.train
  if cfg.tokenizer.vocab_size > m.vocab_size:
    raise ConfigError(f'tokenizer.vocab_size={cfg.tokenizer.vocab_size} exceeds '
                      f'model.vocab_size={m.vocab_size}')
  if m.d_model % m.num_heads:
    raise ConfigError(f'model.d_model={m.d_model} must be divisible by '
                      f'model.num_heads={m.num_heads}')
  if m.num_kv_heads and m.num_heads % m.num_kv_heads:
    raise ConfigError(f'model.num_heads={m.num_heads} must be divisible by '
                      f'model.num_kv_heads={m.num_kv_heads} (grouped-query attention)')
  if not 0.0 < m.rotary_fraction <= 1.0:
    raise ConfigError(f'model.rotary_fraction={m.rotary_fraction}: expected a share in (0, 1]')
  if m.positions == 'rotary' and (m.d_model // m.num_heads) % 2:
    raise ConfigError(f'rotary positions need an even head dim, got '
                      f'{m.d_model // m.num_heads} (model.d_model / model.num_heads)')
  if cfg.data.seq_len > m.max_len:
    raise ConfigError(f'data.seq_len={cfg.data.seq_len} exceeds model.max_len={m.max_len}')
  if t.batch_size % t.grad_accum:
    raise ConfigError(f'train.batch_size={t.batch_size} must be divisible by '
                      f'train.grad_accum={t.grad_accum}')


def _check_lists(cfg) -> None:
  """The comma-separated fields: languages, mixture numbers, pass@k."""
  langs = languages(cfg)
  if not langs or len(set(langs)) != len(langs):
    raise ConfigError(f'data.languages must list distinct names, got {cfg.data.languages!r}')
  bad = [k for k in items(cfg.experiment.controls) if k not in PLANTED_KINDS]
  if bad:
    raise ConfigError(f'experiment.controls names {bad}; expected some of {PLANTED_KINDS}')
  for name in items(cfg.corpus.planted):
    if not any(name.endswith('_' + k) and len(name) > len(k) + 1 for k in PLANTED_KINDS):
      raise ConfigError(f'corpus.planted entry {name!r} must look like <language>_<kind>, kind '
                        f'one of {PLANTED_KINDS}')
  if not 0.0 <= cfg.data.facts_rate < 1.0:
    raise ConfigError(f'data.facts_rate must be in [0, 1), got {cfg.data.facts_rate}')
  _positive(cfg, 'corpus.facts', allow_zero=True)
  if not 0.0 < cfg.corpus.planted_share <= 1.0:
    raise ConfigError(f'corpus.planted_share must be in (0, 1], got {cfg.corpus.planted_share}')
  bad = [lang for lang in items(cfg.experiment.new_languages) if lang not in langs[1:]]
  if bad:
    raise ConfigError(f'experiment.new_languages names {bad}; expected languages of '
                      f'data.languages after the primary {langs[0]!r}: {list(langs[1:])}')
  if cfg.dynamics.language and cfg.dynamics.language not in langs:
    raise ConfigError(f'dynamics.language={cfg.dynamics.language!r} is not in data.languages '
                      f'{list(langs)}')
  for field in ('weights', 'target_tokens'):
    values = numbers(cfg, f'data.{field}')
    if values and len(values) != len(langs):
      raise ConfigError(f'data.{field} has {len(values)} entries but data.languages has '
                        f'{len(langs)}: {cfg.data[field]!r}')
    if values and not sum(values) > 0:
      raise ConfigError(f'data.{field} must not be all zero: {cfg.data[field]!r}')
  try:
    ks = [int(k) for k in items(cfg.eval.k)]
  except ValueError as e:
    raise ConfigError(f'eval.k must be comma-separated integers, got {cfg.eval.k!r}') from e
  if not ks or min(ks) < 1 or max(ks) > cfg.eval.samples:
    raise ConfigError(f'eval.k={cfg.eval.k!r} must list k >= 1 and <= eval.samples='
                      f'{cfg.eval.samples} (pass@k needs k samples per problem)')


def to_json(cfg: ml_collections.ConfigDict) -> str:
  return json.dumps(cfg.to_dict(), indent=2, sort_keys=True)


def from_json(text: str) -> ml_collections.ConfigDict:
  """Rebuilds a config saved by `to_json`, validated against today's schema."""
  cfg = default_config()
  _merge(cfg, json.loads(text), '')
  return validate(cfg)


def _merge(cfg: ml_collections.ConfigDict, values: dict, path: str) -> None:
  for key, value in values.items():
    if isinstance(value, dict) and isinstance(cfg.get(key), ml_collections.ConfigDict):
      _merge(cfg[key], value, f'{path}{key}.')
    elif key in cfg:
      cfg[key] = value
    else:
      raise ConfigError(f'unknown config field {path}{key!s} in saved config')
