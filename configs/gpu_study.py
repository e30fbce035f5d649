"""The whole Babel Tower study (`--mode experiment`) sized for one H100 or H200: about 8 minutes.

  bash launch/gpu.sh -- --config configs/gpu_study.py --workdir runs/gpu_study --mode experiment
  python -m babel_jax.main --config configs/gpu_study.py:h100 --mode plan   # memory per device

`:SPEC` is comma-separated: `h200` (default) or `h100` picks the single-GPU preset (memory for
`--mode plan`); `paper` or `fresh` forces a language set (default: the paper's PHP and Go when
launch/fetch_debian_sources.sh has fetched them, else JavaScript and C++), studied beside the
three planted controls of Python (clone, partial clone, scrambled). Everything else follows
demo.py, scaled up: 16 MB of code per language, a 4096-piece tokenizer (4 x 4096 ids with the
controls), an 8-layer / 512-wide GPT (34M parameters) on 32 x 1024-token batches in bfloat16
(float32 master weights, cuDNN attention), 3 seeds of every continual run and 2 reference runs
per language twice as long (experiment.reference_factor = 2, to fit a 15-minute GPU visit),
HumanEval on 8 problems per language with 8 sandboxes. A GPU host often lacks npm (a fresh
source) and the evaluation toolchains: build the corpus where they are (`--mode corpus`, `--mode
tokenizer` with `--config.data.corpus_dir=DIR`) and carry DIR; languages without a toolchain are not evaluated (the study says so and uses the next performance curve).

Measured on one H100 (2026-12-05, jax 0.11.2): at 1 seed and 1 reference run per language with
HumanEval kept to the comparison (--config.experiment.seeds=1 --config.experiment.reference_seeds=1
--config.experiment.evaluate_continual=False), every phase ran in 273 s: primary 40 s, continual
169 s (2,250 steps in 10 runs), dynamics 30 s, scratch 20 s, compare 9 s, at 490-580k tokens/s
(23-28% MFU). At full size (5,250 continual steps in 25 runs) that is ~9-10 minutes and ~45 GB of
checkpoints with checkpoint.optimizer_state = 'latest' (with Adam's state in every dense
checkpoint the study filled the host's 64 GiB disk).
"""

import os

from babel_jax import config as config_lib

SPECS = {'h100', 'h200', 'paper', 'fresh'}


def _demo(languages: str):
  return config_lib.load_file(os.path.join(os.path.dirname(__file__), 'demo.py'), languages)


def get_config(spec: str = ''):
  parts = [p.strip() for p in spec.split(',') if p.strip()]
  unknown = [p for p in parts if p not in SPECS]
  if unknown or len([p for p in parts if p in ('h100', 'h200')]) > 1 or \
      len([p for p in parts if p in ('paper', 'fresh')]) > 1:
    raise ValueError(f'configs/gpu_study.py:{spec}: expected at most one of h100/h200 and one of '
                     'paper/fresh, comma-separated')
  gpu = next((p for p in parts if p in ('h100', 'h200')), 'h200')
  c = _demo(next((p for p in parts if p in ('paper', 'fresh')), ''))
  paper = c.data.languages.startswith('python,php')
  langs = 'python,php,go' if paper else 'python,javascript,cpp'
  c.corpus.sources = 'python_stdlib,debian' if paper else 'python_stdlib,cpp_headers,npm_js'
  c.corpus.languages = c.data.languages = langs
  c.mesh.preset = gpu
  c.mesh.num_devices = 1  # the first GPU, also on a host with several

  c.corpus.max_bytes_per_language = 16_000_000
  c.tokenizer.sample_bytes_per_language = 2_000_000
  c.data.seq_len = 1024
  c.data.read_threads = 8
  c.data.prefetch = 8

  m = c.model
  m.vocab_size, m.d_model, m.num_layers, m.num_heads = 8192, 512, 8, 8
  m.max_len = 1024
  m.dtype, m.param_dtype = 'bfloat16', 'float32'
  m.attention_impl = 'auto'  # cuDNN flash attention on the GPU
  m.scan_layers = True  # one compiled layer body: short compiles
  m.remat = 'none'  # 32 x 1024 tokens of this model fit either GPU without recomputation

  c.train.batch_size = 32
  c.train.lr = 1e-3
  c.train.warmup_steps = 50
  c.train.log_every = 100
  c.checkpoint.every_steps = 250
  c.checkpoint.log_spaced = 4
  # Dense checkpoints of 25+ runs: with Adam's state each would take 3x the params' 136 MB and
  # the study ~120 GB (it filled a 64 GiB disk on an H100 host); params alone, ~45 GB.
  c.checkpoint.optimizer_state = 'latest'

  c.probe.tokens_per_language = 16384
  c.probe.batch_size = 16

  c.eval.problems = 8
  c.eval.max_new_tokens = 128
  c.eval.batch_size = 64
  c.eval.workers = 8

  e = c.experiment
  e.primary_steps = 500

  # The planted controls (clone, partial clone, scrambled; inherited from demo.py) beside two
  # real new languages; the tokenizer's 4096 pieces grow to 4 x 4096 ids with the controls.
  c.tokenizer.vocab_size = 4096
  m.vocab_size = 4096
  e.seeds = 3
  e.reference_seeds = 2
  e.reference_factor = 2  # censored readings are counted and kept out of the intervals
  e.continual_steps = 150
  e.continual_checkpoints = 6
  e.scratch_steps = 300
  e.evaluate_continual = True
  return c
