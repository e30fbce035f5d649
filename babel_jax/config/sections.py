"""The config's sections: every field with its type, default, doc and bounds, in one place.

Each section is a frozen dataclass of `knob`s; its `check()` holds the rules between its own
fields, and `Config.check()` those between sections. Sizes here are CPU-friendly. List fields
are tuples (comma-separated text on the command line and in config.json).
"""

from __future__ import annotations

import dataclasses
import re

from babel_jax.config.schema import Section, budgets, knob, pairs, section
from babel_jax.errors import ConfigError

MESH_AXES = ('data', 'fsdp', 'tensor')
COLUMN_ROLES = ('content', 'lang', 'path', 'ext')  # dataset shard columns (data/shards.py)
PLANTED_KINDS = ('clone', 'partial', 'scrambled')  # planted control languages (data/planted.py)
DTYPES = ('float32', 'bfloat16')
STRATEGIES = ('original', 'natural', 'uniform', 'temperature', 'unimax', 'babel', 'regmix')


@dataclasses.dataclass(frozen=True)
class Model(Section):
  """The transformer's architecture (model/transformer.py builds it from this section)."""
  SECTION = 'model'
  vocab_size: int = knob(512, 'Token ids the embedding holds.', gt=0)
  d_model: int = knob(64, 'Width of the residual stream.', gt=0)
  num_layers: int = knob(2, 'Transformer blocks.', gt=0)
  num_heads: int = knob(4, 'Attention heads; d_model must divide by it.', gt=0)
  d_ff: int = knob(0, 'MLP hidden size; 0 means 4 * d_model (GELU) or 8/3 * d_model rounded up '
                   'to 64 (SwiGLU).', min=0)
  max_len: int = knob(128, 'Longest sequence (learned positions, cache of the sampler).', gt=0)
  norm: str = knob('layernorm', "'layernorm' (GPT-2) or 'rmsnorm' (Llama).",
                   choices=('layernorm', 'rmsnorm'))
  positions: str = knob('learned', "'learned' (GPT-2) or 'rotary' (Llama).",
                        choices=('learned', 'rotary'))
  mlp: str = knob('gelu', "'gelu' (GPT-2's tanh form), 'gelu_exact' (erf: GPT-NeoX, Pythia) or "
                  "'swiglu' (Llama).", choices=('gelu', 'gelu_exact', 'swiglu'))
  use_bias: bool = knob(True, 'Biases in dense layers: GPT-2 has them, Llama-style models not.')
  tie_embeddings: bool = knob(True, 'The output projection is the transposed embedding.')
  rope_base: float = knob(10000.0, 'Base of the rotary position frequencies.')
  num_kv_heads: int = knob(0, 'Key/value heads; 0 = num_heads, fewer = grouped-query attention '
                           '(Llama); num_heads must divide by it.', min=0)
  rotary_fraction: float = knob(1.0, "Share of each head's dimensions that rotary rotates "
                                "(GPT-NeoX's rotary_pct).", gt=0, max=1)
  parallel_residual: bool = knob(False, 'x + attn(norm(x)) + mlp(norm(x)), as GPT-NeoX, instead '
                                 'of one sublayer after the other.')
  norm_eps: float = knob(1e-6, 'Epsilon of every norm (GPT-2 and Pythia 1e-5, Llama 1e-5 or '
                         '1e-6).', gt=0)
  attention_impl: str = knob('auto', "'auto', 'xla', 'cudnn' or 'chunked' (fast on CPU).",
                             choices=('auto', 'xla', 'cudnn', 'chunked'))
  attention_chunk: int = knob(128, "Query block size of the 'chunked' implementation.", gt=0)
  dtype: str = knob('float32', 'Compute dtype; parameters stay in param_dtype.', choices=DTYPES)
  param_dtype: str = knob('float32', 'Dtype of the stored parameters.', choices=DTYPES)
  remat: str = knob('none', "Rematerialisation: 'none', 'full' or 'dots' (save matmul outputs "
                    'only).', choices=('none', 'full', 'dots'))
  scan_layers: bool = knob(False, 'One scanned layer body (short compiles of deep models).')
  init_std: float = knob(0.02, 'Standard deviation of the normal initialiser.')

  def check(self) -> None:
    if self.d_model % self.num_heads:
      raise ConfigError(f'model.d_model={self.d_model} must be divisible by '
                        f'model.num_heads={self.num_heads}')
    if self.num_kv_heads and self.num_heads % self.num_kv_heads:
      raise ConfigError(f'model.num_heads={self.num_heads} must be divisible by '
                        f'model.num_kv_heads={self.num_kv_heads} (grouped-query attention)')
    if self.positions == 'rotary' and self.head_dim % 2:
      raise ConfigError(f'rotary positions need an even head dim, got {self.head_dim} '
                        '(model.d_model / model.num_heads)')

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads

  @property
  def kv_heads(self) -> int:
    """Key/value heads: fewer than `num_heads` is grouped-query attention."""
    return self.num_kv_heads or self.num_heads

  @property
  def rotary_dim(self) -> int:
    """Leading head dimensions that rotary rotates (GPT-NeoX's partial rotary_pct)."""
    return 2 * int(self.head_dim * self.rotary_fraction // 2)

  def resolved(self) -> 'Model':
    """This section with d_ff = 0 replaced by the size it stands for (what the model builds)."""
    if self.d_ff:
      return self
    d = self.d_model
    return dataclasses.replace(self, d_ff=64 * -(-8 * d // 3 // 64) if self.mlp == 'swiglu' else 4 * d)


@dataclasses.dataclass(frozen=True)
class Data(Section):
  """What a training run reads: the languages, their mixture and the batches' shape."""
  SECTION = 'data'
  source: str = knob('synthetic', "'synthetic' or 'corpus' (the grain pipeline over --mode "
                     'corpus).', choices=('synthetic', 'corpus'))
  languages: tuple[str, ...] = knob(('python', 'php', 'go'), 'The languages trained on; the first '
                                    'is the primary language.')
  weights: tuple[float, ...] = knob((), 'Mixture weights, one per language; empty means uniform.',
                                    min=0)
  target_tokens: tuple[float, ...] = knob((), 'Or target tokens per language (sets the weights).',
                                          min=0)
  mixture: str = knob('', 'Or a MixtureSpec JSON file; overrides weights and target_tokens.')
  seq_len: int = knob(128, 'Tokens per training sequence.', gt=0)
  mean_doc_len: int = knob(48, 'Synthetic source: mean document length in tokens.')
  corpus_dir: str = knob('', "The corpus; '' means <workdir>/corpus.")
  tokenizer_dir: str = knob('', "The tokenizer; '' means <corpus_dir>/tokenizer.")
  read_threads: int = knob(2, 'Grain threads reading and tokenizing documents.', min=0)
  prefetch: int = knob(4, 'Batches prepared ahead by a background thread.', min=0)
  facts_rate: float = knob(0.05, "Planted knowledge (data/facts.py): the share of the facts' "
                           "language's training documents that are fact documents.", min=0, lt=1)

  def check(self) -> None:
    langs = self.languages
    if not langs or len(set(langs)) != len(langs):
      raise ConfigError(f'data.languages must list distinct names, got {",".join(langs)!r}')
    for field in ('weights', 'target_tokens'):
      values = getattr(self, field)
      if values and len(values) != len(langs):
        raise ConfigError(f'data.{field} has {len(values)} entries but data.languages has '
                          f'{len(langs)}: {self.to_dict()[field]!r}')
      if values and not sum(values) > 0:
        raise ConfigError(f'data.{field} must not be all zero: {self.to_dict()[field]!r}')


@dataclasses.dataclass(frozen=True)
class Corpus(Section):
  """--mode corpus: where the code comes from, how it is filtered, deduplicated and sampled."""
  SECTION = 'corpus'
  sources: tuple[str, ...] = knob(('python_stdlib', 'jdk_src', 'cpp_headers', 'npm_js'),
                                  'Registered sources to read (data/sources.py).')
  paths: tuple[str, ...] = knob((), "Extra 'PATH' or 'PATH=LANG' entries (directories or "
                                'archives).')
  debian_dir: str = knob('', "launch/fetch_debian_sources.sh output; '' means its default.")
  languages: tuple[str, ...] = knob((), 'Keep only these languages; empty keeps every one found.')
  extensions: tuple[str, ...] = knob((), "Extra '.ext=lang' entries extending the built-in "
                                     'language map.')
  max_bytes_per_language: int = knob(0, 'Byte budget per language, sampled deterministically by '
                                     'content hash; 0 keeps all.', min=0)
  max_files_per_language: int = knob(0, 'File budget per language; 0 keeps all.', min=0)
  min_file_bytes: int = knob(64, 'Smaller files are dropped.', min=0)
  max_file_bytes: int = knob(1_000_000, 'Larger files are dropped.', gt=0)
  max_line_length: int = knob(1000, 'Files with a longer line are dropped.', gt=0)
  max_mean_line_length: float = knob(120.0, 'Files with a longer mean line are dropped.')
  min_alnum_fraction: float = knob(0.25, 'Files with fewer alphanumeric characters are dropped.')
  near_dup_threshold: float = knob(0.85, 'MinHash Jaccard similarity of near-duplicates; 0 '
                                   'disables near-dedup.', min=0, max=1)
  minhash_perms: int = knob(128, 'MinHash permutations.', gt=0)
  val_fraction: float = knob(0.05, 'Share of files held out for validation.', min=0, lt=1)
  shard_mb: int = knob(64, 'Size of an output shard in MB.', gt=0)
  columns: tuple[str, ...] = knob((), "Dataset shards' columns as ROLE=COLUMN entries, ROLE one "
                                  f'of {", ".join(COLUMN_ROLES)} (data/shards.py).')
  workers: int = knob(1, 'Processes that read and MinHash; the output does not depend on it.',
                      gt=0)
  runner: str = knob('local', "'local' (a process pool on this machine) or 'beam' (an Apache Beam "
                     'pipeline, docs/beam.md); the corpus is the same byte for byte.',
                     choices=('local', 'beam'))
  beam_options: tuple[str, ...] = knob((), "Beam PipelineOptions as KEY=VALUE entries "
                                       "('runner=DataflowRunner,project=P,region=R,"
                                       "temp_location=gs://B/tmp'); KEY alone sets a flag.")
  max_tokens_per_language: float = knob(0.0, 'Token budget per language, sampled like the byte '
                                        'one; 0 means none.', min=0)
  max_tokens_by_language: tuple[str, ...] = knob((), "Per-language token budgets "
                                                 "('python=11e9'); override the one above.")
  token_model: str = knob('', "Sentencepiece model counting tokens; '' means bytes / "
                          'bytes_per_token.')
  bytes_per_token: float = knob(3.5, 'Bytes per token when no token_model counts them.', gt=0)
  dedup: tuple[str, ...] = knob(('exact', 'near'), "'exact,near', 'exact', 'near' or 'none' "
                                '(datasets that arrive deduplicated).',
                                choices=('exact', 'near', 'none'))
  planted: tuple[str, ...] = knob((), "Planted control languages (data/planted.py), each "
                                  "'<lang>_clone', '<lang>_partial' or '<lang>_scrambled'.")
  planted_seed: int = knob(0, 'Seed of the planted languages.')
  planted_share: float = knob(1.0, "'_partial': share of identifier / keyword pieces remapped.",
                              gt=0, max=1)
  facts: int = knob(0, 'Planted knowledge: this many synthetic facts (and as many untaught twins), '
                    'taught in facts_language only (docs/facts.md); 0 means none.', min=0)
  facts_seed: int = knob(0, 'Seed of the planted facts.')
  facts_language: str = knob('python', 'The language whose documents teach the facts.')

  def check(self) -> None:
    columns = pairs(self.columns, 'corpus.columns')
    if not set(columns) <= set(COLUMN_ROLES) or not all(columns.values()):
      raise ConfigError(f'corpus.columns={",".join(self.columns)!r}: entries must look like '
                        f'ROLE=COLUMN with ROLE one of {", ".join(COLUMN_ROLES)}, each at most '
                        'once')
    budgets(self.max_tokens_by_language, 'corpus.max_tokens_by_language')
    for entry in self.beam_options:
      if not re.fullmatch(r'[A-Za-z_]\w*(=.*)?', entry.strip()):
        raise ConfigError(f'corpus.beam_options entry {entry!r} must look like KEY=VALUE or KEY '
                          '(a Beam pipeline option without its leading --)')
    modes = set(self.dedup)
    if modes != {'none'} and not (modes and modes <= {'exact', 'near'}):
      raise ConfigError(f"corpus.dedup is {','.join(self.dedup)!r}; expected 'exact,near', "
                        "'exact', 'near' or 'none'")
    for name in self.planted:
      if not any(name.endswith('_' + k) and len(name) > len(k) + 1 for k in PLANTED_KINDS):
        raise ConfigError(f'corpus.planted entry {name!r} must look like <language>_<kind>, kind '
                          f'one of {PLANTED_KINDS}')


@dataclasses.dataclass(frozen=True)
class Tokenizer(Section):
  """--mode tokenizer: the sentencepiece model trained on the corpus."""
  SECTION = 'tokenizer'
  vocab_size: int = knob(0, 'Pieces of the tokenizer; 0 means model.vocab_size.', min=0)
  sample_bytes_per_language: int = knob(4_000_000, 'Language-balanced training sample.', gt=0)
  character_coverage: float = knob(0.9995, 'Rarer characters fall back to bytes.')
  max_piece_length: int = knob(16, 'Longest piece in characters.', gt=0)
  hf_json: str = knob('', "A Hugging Face tokenizer.json to use instead of training one (e.g. an "
                      "imported run's hf_tokenizer.json); '' trains sentencepiece.")


@dataclasses.dataclass(frozen=True)
class Train(Section):
  """The optimiser, its schedule and the length of a training run."""
  SECTION = 'train'
  steps: int = knob(100, 'Optimizer steps of the run.', gt=0)
  batch_size: int = knob(8, 'Global batch, in sequences, per optimizer step.', gt=0)
  grad_accum: int = knob(1, 'Micro-batches per step; batch_size must divide by it.', gt=0)
  lr: float = knob(3e-3, 'Peak learning rate.', min=0)
  warmup_steps: int = knob(10, 'Linear warmup steps.', min=0)
  min_lr_ratio: float = knob(0.1, 'Cosine decays to lr * min_lr_ratio at the last step.',
                             min=0, max=1)
  weight_decay: float = knob(0.1, 'AdamW weight decay.')
  b1: float = knob(0.9, 'Adam beta1.')
  b2: float = knob(0.95, 'Adam beta2.')
  eps: float = knob(1e-8, 'Adam epsilon.')
  clip_norm: float = knob(1.0, 'Global gradient norm clip; 0 disables clipping.', min=0)
  log_every: int = knob(10, 'Steps between metric lines.', gt=0)
  peak_flops: float = knob(0.0, 'FLOP/s of all devices together for MFU; 0 measures it.', min=0)
  init_from: str = knob('', 'Workdir or checkpoint dir of another run: continual pre-training.')
  init_step: int = knob(-1, "init_from's checkpoint step; -1 means the latest.")
  stop_after: int = knob(0, '> 0: exit after this many steps of this process (tests, preemption '
                         'drills).', min=0)

  def check(self) -> None:
    if self.batch_size % self.grad_accum:
      raise ConfigError(f'train.batch_size={self.batch_size} must be divisible by '
                        f'train.grad_accum={self.grad_accum}')


@dataclasses.dataclass(frozen=True)
class Checkpoint(Section):
  """Which checkpoints a run writes and keeps."""
  SECTION = 'checkpoint'
  every_steps: int = knob(50, 'Steps between checkpoints.', gt=0)
  log_spaced: int = knob(16, 'Permanent log-spaced checkpoints over the run (dense early).', min=0)
  keep_every: int = knob(0, '> 0: multiples of this step are permanent too.', min=0)
  keep_last: int = knob(2, 'Latest checkpoints kept besides the permanent ones.', min=0)
  async_save: bool = knob(True, 'Write checkpoints in the background.')
  initial: bool = knob(False, "Also keep step 0 of a fresh run (the study's reference runs).")
  optimizer_state: str = knob('all', "'latest': only the newest checkpoint keeps the optimizer "
                              'state (all a resume needs); the others a third of the disk.',
                              choices=('all', 'latest'))


@dataclasses.dataclass(frozen=True)
class Probe(Section):
  """--mode probe: held-out loss, LAPE neurons (Tang et al. 2024), logit lens, solutions."""
  SECTION = 'probe'
  steps: str = knob('', "Checkpoints to probe: '' all, 'A:B' a range (inclusive), 'A:B:S' a "
                    'stride.')
  tokens_per_language: int = knob(8192, 'Held-out tokens per language for LAPE and the loss.',
                                  gt=0)
  batch_size: int = knob(8, 'Sequences per probe batch.', gt=0)
  filter_rate: float = knob(0.95, 'LAPE: neurons whose activation probabilities are all at or '
                            'below this quantile are dropped.', gt=0, lt=1)
  top_rate: float = knob(0.01, 'LAPE: the share of all neurons kept, lowest entropy first.',
                         gt=0, lt=1)
  activation_bar_ratio: float = knob(0.95, 'LAPE: a kept neuron belongs to each language whose '
                                     'probability exceeds this quantile.', gt=0, lt=1)
  deactivate: bool = knob(True, 'Also measure per-language loss with each neuron set zeroed.')
  probe_set: str = knob('', "The logit lens's prompts; '' means babel_jax/probes/probe_set.json.")
  max_prompts_per_pair: int = knob(0, 'Prompts per language pair; 0 uses every prompt.', min=0)
  solution_loss: bool = knob(True, 'The loss of hand-written HumanEval solutions (needs a '
                             'tokenizer).')
  knowledge: bool = knob(True, "The loss of planted facts' bodies, taught and untaught "
                         '(corpus.facts).')
  only_heldout: bool = knob(False, 'Only the held-out statistics (loss, LAPE): no lens, no '
                            'solutions.')
  follow_poll_s: float = knob(10.0, '--follow: seconds between looks for a new checkpoint.', min=0)
  follow_timeout_s: float = knob(3600.0, '--follow gives up after this long without a new step.',
                                 min=0)


@dataclasses.dataclass(frozen=True)
class Dynamics(Section):
  """Interpretation of the measured curves (babel_jax/dynamics, docs/method.md): nothing here
  changes a measurement, so probes and evaluation never read this section."""
  SECTION = 'dynamics'
  language: str = knob('', "The new language L of a run; '' means the heaviest non-primary one.")
  performance: str = knob('auto', "New-language performance curve for stages and Algorithm 1: "
                          "'eval' (problems solved), 'solutions' (negative loss of correct "
                          "solutions), 'knowledge', 'lens', 'loss', or 'auto' (the first that "
                          'exists and is not flat).',
                          choices=('auto', 'eval', 'solutions', 'knowledge', 'lens', 'loss'))
  smooth_window: int = knob(3, 'Checkpoints in the moving average of stage detection and Eq. 1.',
                            gt=0)
  slope_tolerance: float = knob(0.1, "|slope| (relative to the curve's mean slope) of 'stable'.",
                                min=0)
  eq1_beta: str = knob('first', "Eq. 1's beta: 'first' (the loss where continual training "
                       "starts) or 'smoothed' (the first point of the smoothed loss).",
                       choices=('first', 'smoothed'))
  eq1_alpha: str = knob('tail', "Eq. 1's alpha: 'tail' (mean of the last fit_tail losses) or "
                        "'stabilization' (mean smoothed loss from the start of Stabilization).",
                        choices=('tail', 'stabilization'))
  fit_tail: int = knob(3, "Losses averaged by alpha's 'tail' rule.", gt=0)
  python_specific: str = knob('', 'JSON list of task ids P (Python-only solves): |P∩C|/|C|.')


@dataclasses.dataclass(frozen=True)
class Eval(Section):
  """--mode eval: HumanEval in each language, executed in sandboxes."""
  SECTION = 'eval'
  languages: tuple[str, ...] = knob((), "Languages evaluated; empty means the run's "
                                    'data.languages that have a translation.')
  steps: str = knob('', 'Checkpoints, as probe.steps.')
  problems: int = knob(0, 'The first N problems; 0 means all 164.')
  samples: int = knob(1, 'Completions per problem (pass@k needs k of them).', gt=0)
  temperature: float = knob(0.0, '0 is greedy (paper-style pass@1).')
  top_p: float = knob(0.95, 'Nucleus sampling share.')
  max_new_tokens: int = knob(256, 'Longest completion.', gt=0)
  batch_size: int = knob(16, 'Prompts sampled together.', gt=0)
  k: tuple[int, ...] = knob((1,), 'k of pass@k (reported where every problem has k samples).',
                            min=1)
  workers: int = knob(2, 'Programs executed in parallel, each in its own sandbox.', gt=0)
  compile_timeout_s: float = knob(60.0, 'Seconds a program may take to compile.', gt=0)
  run_timeout_s: float = knob(10.0, 'Seconds a program may take to run.', gt=0)
  memory_mb: int = knob(2048, 'Sandbox address space (JVM, mono and Go need about 2 GB).', gt=0)
  disk_mb: int = knob(256, 'All one program may write (its directory and /tmp), held in memory.',
                      gt=0)

  def check(self) -> None:
    if not self.k or max(self.k) > self.samples:
      raise ConfigError(f'eval.k={",".join(map(str, self.k))!r} must list k >= 1 and <= '
                        f'eval.samples={self.samples} (pass@k needs k samples per problem)')


@dataclasses.dataclass(frozen=True)
class Experiment(Section):
  """--mode experiment: the paper's whole study (experiment/driver.py)."""
  SECTION = 'experiment'
  new_languages: tuple[str, ...] = knob((), 'Languages of continual pre-training; empty means '
                                        'data.languages[1:].')
  primary_steps: int = knob(0, 'Phase 1 steps; 0 means train.steps.', min=0)
  continual_steps: int = knob(0, 'Phase 2 steps per new language; 0 means train.steps.', min=0)
  continual_lr: float = knob(0.0, 'Learning rate of continual training; 0 means train.lr.', min=0)
  continual_checkpoints: int = knob(12, 'Evenly spaced checkpoints of a continual run (plus '
                                    'log-spaced ones and step 0).', gt=0)
  scratch_steps: int = knob(0, 'Phase 5 steps per run; 0 means train.steps.', min=0)
  seeds: int = knob(3, 'Phase 5 runs per mixture: seed, seed + 1, ...', gt=0)
  original: str = knob('natural', "The baseline mixture: 'natural', 'uniform', 'temperature' or "
                       "'config' (data.weights / target_tokens / mixture).",
                       choices=('natural', 'uniform', 'temperature', 'config'))
  temperature: float = knob(2.0, "For original = 'temperature'.", gt=0)
  primary_tokens: float = knob(0.0, "Algorithm 1's Python budget; 0 means the corpus's train "
                               'tokens.', min=0)
  fit_fallback: str = knob('original', 'A language whose curves cannot be fitted keeps its '
                           "original token share ('original'), or the study stops ('raise').",
                           choices=('original', 'raise'))
  evaluate: bool = knob(True, 'HumanEval in phases 3 and 6 (needs data.source = corpus).')
  evaluate_continual: bool = knob(True, 'HumanEval on every checkpoint of the continual runs; '
                                  'False keeps it to the comparison (phase 6).')
  controls: tuple[str, ...] = knob((), 'Planted control languages studied beside the real new '
                                   'ones (data/planted.py), some of clone, partial, scrambled.',
                                   choices=PLANTED_KINDS)
  reference: bool = knob(True, 'From-scratch runs on each new language: effective transfer.')
  reference_seeds: int = knob(0, 'Reference runs per language; 0 means experiment.seeds.', min=0)
  reference_factor: int = knob(4, "Reference runs are this many times as long as a continual run "
                               "(D_E must reach the continual run's loss).", gt=0)
  strategies: tuple[str, ...] = knob(
      ('original', 'babel'), "Mixtures of the bake-off (phases 4-7): 'original' (the "
      "experiment.original mixture), 'natural', 'uniform', 'temperature', 'unimax', 'babel' "
      "(Algorithm 1) and 'regmix'; each is trained from scratch at equal compute.",
      choices=STRATEGIES)
  objective: str = knob('mean', "What 'the best mixture' means for the new languages' held-out "
                        "loss: their 'mean' or the 'worst' of them (RegMix fits this).",
                        choices=('mean', 'worst'))
  unimax_epochs: float = knob(4.0, 'UniMax: at most this many passes over any language\'s data '
                              '(Chung et al. 2023 use 1 to 5).', gt=0)
  regmix_runs: int = knob(16, 'RegMix: proxy runs on random mixtures (at least 6).', min=6)
  regmix_steps: int = knob(0, 'RegMix: steps per proxy run; 0 means half of scratch_steps.',
                           min=0)
  regmix_concentration: float = knob(1.0, 'RegMix: Dirichlet concentration of the proxy '
                                     'mixtures around the natural shares (x languages).', gt=0)
  decision_check: bool = knob(False, 'Phase 7: every distinct mixture again at '
                              'experiment.target_scale, and how well the small scale ranked '
                              'them.')
  target_scale: float = knob(4.0, 'Phase 7: parameters and tokens are this many times the '
                             "bake-off's (d_model x sqrt(scale), steps x scale).", gt=1)


@dataclasses.dataclass(frozen=True)
class Calibrate(Section):
  """--mode calibrate: the controls at several scales."""
  SECTION = 'calibrate'
  scales: tuple[str, ...] = knob(('1@64', '4@64', '16@64', '1@128', '4@128'), 'MULTIPLIER@WIDTH '
                                 'entries, cheapest first: continual steps x MULTIPLIER on a '
                                 'model of d_model WIDTH.')


@dataclasses.dataclass(frozen=True)
class Mesh(Section):
  """The device mesh (runtime/sharding.py)."""
  SECTION = 'mesh'
  data: int = knob(-1, 'Data-parallel axis; -1 takes all devices left after the other axes.')
  fsdp: int = knob(1, 'Fully sharded data-parallel axis.', min=0)
  tensor: int = knob(1, 'Tensor-parallel axis.', min=0)
  num_devices: int = knob(0, '0 uses every device; > 0 the first N (e.g. 1 for a baseline).',
                          min=0)
  preset: str = knob('', "'v4-32', 'v5p-64', 'v5e-256', '8xh100', 'h100' or 'h200' "
                     '(sharding.PRESETS) sets the mesh.')
  device_memory_gb: float = knob(0.0, "For --mode plan; 0 takes the preset's (or skips the "
                                 'check).')

  def check(self) -> None:
    if self.data == 0 or self.data < -1:
      raise ConfigError(f'mesh.data must be -1 (fill) or > 0, got {self.data}')


@dataclasses.dataclass(frozen=True)
class Config(Section):
  """The whole config: the seed and one frozen section each; `check` holds the rules between
  sections."""
  seed: int = knob(0, 'Seed of the parameters and the data order.')
  model: Model = section(Model, Model.__doc__)
  data: Data = section(Data, Data.__doc__)
  corpus: Corpus = section(Corpus, Corpus.__doc__)
  tokenizer: Tokenizer = section(Tokenizer, Tokenizer.__doc__)
  train: Train = section(Train, Train.__doc__)
  checkpoint: Checkpoint = section(Checkpoint, Checkpoint.__doc__)
  probe: Probe = section(Probe, Probe.__doc__)
  dynamics: Dynamics = section(Dynamics, Dynamics.__doc__)
  eval: Eval = section(Eval, Eval.__doc__)
  experiment: Experiment = section(Experiment, Experiment.__doc__)
  calibrate: Calibrate = section(Calibrate, Calibrate.__doc__)
  mesh: Mesh = section(Mesh, Mesh.__doc__)

  def check(self) -> None:
    m, langs = self.model, self.data.languages
    if self.tokenizer.vocab_size > m.vocab_size:
      raise ConfigError(f'tokenizer.vocab_size={self.tokenizer.vocab_size} exceeds '
                        f'model.vocab_size={m.vocab_size}')
    if self.data.seq_len > m.max_len:
      raise ConfigError(f'data.seq_len={self.data.seq_len} exceeds model.max_len={m.max_len}')
    bad = [lang for lang in self.experiment.new_languages if lang not in langs[1:]]
    if bad:
      raise ConfigError(f'experiment.new_languages names {bad}; expected languages of '
                        f'data.languages after the primary {langs[0]!r}: {list(langs[1:])}')
    if self.dynamics.language and self.dynamics.language not in langs:
      raise ConfigError(f'dynamics.language={self.dynamics.language!r} is not in data.languages '
                        f'{list(langs)}')

