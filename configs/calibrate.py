"""The calibration sweep: the three planted controls of Python at five scales, in about an hour on
2 CPU cores. It says, per instrument, the smallest scale at which the clone and the partial clone
separate from the scrambled copy (after Holm): read it before spending accelerator hours.

  python -m babel_jax.main --config configs/calibrate.py --workdir runs/calibrate --mode calibrate

Scales (`calibrate.scales`, MULTIPLIER@WIDTH, cheapest first): continual runs 1, 4 and 16 times
48 steps of 8 x 256 tokens (the demo's until it went to 32) on a 64-wide model, then 1 and 4 times on the demo's
128-wide model. Everything else is the demo's (3 seeds, 2 reference seeds, a 512-piece tokenizer
on the Python standard library) but the reference runs: twice as long as the continual runs, not
4 times (the 16x scale's references alone would take 40 minutes). A continual run that ends below
every loss its reference reached is counted as censored and kept out of the intervals; the table
says how many. Each scale's study lands in
WORKDIR/scales/<scale>/ and the table in WORKDIR/calibration.md after every scale; run the same
command again to resume. Only the controls are studied (no real new language, no mixture), so
the primary language alone needs a corpus.
"""

import os

from babel_jax import config as config_lib


def get_config():
  c = config_lib.load_file(os.path.join(os.path.dirname(__file__), 'demo.py'), 'fresh')
  c.corpus.sources = 'python_stdlib'
  c.corpus.languages = 'python'
  c.data.languages = 'python'
  c.calibrate.scales = '1@64,4@64,16@64,1@128,4@128'
  c.experiment.continual_steps = 48  # the sweep's unit (the demo itself now runs 40)
  c.experiment.reference_factor = 2
  return c
