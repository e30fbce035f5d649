"""The embedded default: the whole Babel Tower study, with controls, in 12 minutes on 2 CPU cores.

`bash launch/demo.sh` runs `--mode experiment` with this config. Python (the standard library)
is the primary language. Beside it: two real new languages, the paper's PHP and Go (Debian
sources) when `launch/fetch_debian_sources.sh` has fetched them, else what a fresh machine has,
JavaScript (npm's sources) and C++ (the standard headers); and the three planted controls of
Python (clone, partial clone, scrambled), which say which instruments see transfer at this scale.
Force a language set with `--config configs/demo.py:paper` or `--config configs/demo.py:fresh`.

How the sizes were chosen (measured on 2 cores; README, "The demo"): the study trains 1 primary,
5 x 3 continual, 5 x 2 reference (3 times as long as a continual run) and 3 from-scratch runs
per distinct mixture of the bake-off (natural, UniMax, Algorithm 1).
The primary model is trained on the 512-piece real vocabulary; every continual run grows it to
4 x 512 ids (one range per planted language), the new rows drawn fresh. A 4-layer, 128-wide
model. The sizes follow the time budget, not a hoped-for verdict: configs/calibrate.py says at
which scale each instrument sees transfer.
"""

import os

from babel_jax.config import default_config
from babel_jax.data import sources

FRESH = ('python_stdlib,npm_js,cpp_headers', 'python,javascript,cpp')
PAPER = ('python_stdlib,debian', 'python,php,go')


def get_config(languages: str = ''):
  if languages not in ('', 'fresh', 'paper'):
    raise ValueError(f'configs/demo.py:{languages}: expected "fresh" or "paper"')
  fetched = os.path.isfile(os.path.join(sources.debian_dir(), 'paths.txt'))
  paper = languages == 'paper' or (languages == '' and fetched)
  source_names, langs = PAPER if paper else FRESH
  c = default_config()
  c.corpus.sources = source_names
  c.corpus.languages = langs
  c.corpus.max_bytes_per_language = 3_000_000
  # Planted knowledge (docs/facts.md): 16 facts taught in Python only, each with an untaught twin.
  # A fact document is ~100 tokens against Python documents of ~4,200, so fact documents at 0.85
  # of Python's document positions are ~13% of its tokens: each fact is seen ~70 times in the
  # primary run (at 0.7, ~30 times, the primary's retention read only 0.06 nats).
  c.corpus.facts = 16
  c.corpus.facts_seed = 0
  c.data.facts_rate = 0.85
  c.tokenizer.vocab_size = 512
  c.tokenizer.sample_bytes_per_language = 1_500_000

  c.data.source = 'corpus'
  c.data.languages = langs  # python first: the primary language.
  c.data.seq_len = 256

  c.model.vocab_size = 512  # grows to 4 x 512 with the three controls
  c.model.d_model = 128
  c.model.num_layers = 4
  c.model.num_heads = 4
  c.model.max_len = 256
  c.train.steps = 150
  c.train.batch_size = 8
  c.train.lr = 2e-3
  c.train.warmup_steps = 20
  c.train.log_every = 50
  c.checkpoint.every_steps = 50
  c.checkpoint.log_spaced = 3
  # Only the newest checkpoint keeps Adam's state (a resume reads no other): the study's ~200
  # dense checkpoints are written a third the size, and nothing the probes read changes.
  c.checkpoint.optimizer_state = 'latest'

  c.probe.tokens_per_language = 2048
  c.probe.max_prompts_per_pair = 2
  c.probe.deactivate = False  # the neuron-deactivation check would double the probing time

  c.eval.problems = 4
  c.eval.max_new_tokens = 48
  c.eval.batch_size = 8

  c.experiment.controls = 'clone,partial,scrambled'
  c.experiment.primary_steps = 400
  # 32 steps (65,536 tokens) a continual run: at 48 the demo took 13-15 minutes on a busy day
  # of the 2-core machine (configs/calibrate.py and mixtures.py keep 48, their figures' size).
  c.experiment.continual_steps = 32
  c.experiment.continual_checkpoints = 4
  c.experiment.scratch_steps = 40  # the bake-off's runs: 40 x 8 x 256 = 81,920 tokens each
  c.experiment.seeds = 3
  c.experiment.reference_seeds = 2  # each with its own noise in the intervals
  c.experiment.reference_factor = 3  # (default 4) the budget; censored readings are counted
  c.experiment.evaluate_continual = False  # pass@1 is 0 at this size: the solution loss instead
  # The mixture bake-off (docs/mixture.md): the natural mixture, UniMax and Algorithm 1, each
  # from scratch at equal compute; identical mixtures run once. configs/mixtures.py runs every
  # strategy and checks the decision at 4x scale.
  c.experiment.strategies = 'natural,unimax,babel'
  return c
