"""The mixture bake-off (issue 22): every strategy at equal compute, and the decision checked at
4x scale, in under an hour on 2 CPU cores.

  python -m babel_jax.main --config configs/mixtures.py --workdir runs/mixtures --mode experiment

Strategies (docs/mixture.md): the natural mixture, uniform, temperature sampling (T = 2),
UniMax (at most 4 epochs per language), Algorithm 1 (P* from continual runs on each new
language, 3 seeds) and a RegMix-style regression over 16 proxy runs. Every distinct mixture is
trained from scratch with 3 seeds on the same tokens; then again at 4x parameters (d_model 64 ->
128) and 4x tokens, and the decision accuracy says how often the small scale orders a pair of
strategies as the larger one does. The languages are the demo's (Python first; PHP and Go when
launch/fetch_debian_sources.sh has fetched them, else JavaScript and C++). No planted controls
and no reference runs: Algorithm 1 needs only the continual runs' curves, and the controls are
the demo's and configs/calibrate.py's subject.
"""

import os

from babel_jax import config as config_lib


def get_config(languages: str = ''):
  c = config_lib.load_file(os.path.join(os.path.dirname(__file__), 'demo.py'), languages)
  c.model.d_model = 64
  c.model.num_layers = 4
  c.model.num_heads = 4

  c.experiment.controls = ''
  c.experiment.reference = False
  c.experiment.primary_steps = 300
  c.experiment.continual_steps = 48
  c.experiment.seeds = 3
  c.experiment.scratch_steps = 100  # 100 x 8 x 256 = 204,800 tokens per bake-off run

  c.experiment.strategies = 'natural,uniform,temperature,unimax,babel,regmix'
  c.experiment.temperature = 2.0
  c.experiment.regmix_runs = 16
  c.experiment.objective = 'mean'
  c.experiment.decision_check = True
  c.experiment.target_scale = 4.0
  return c
