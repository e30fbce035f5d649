"""Measure: checkpoint-streaming probes (logit lens, LAPE neuron statistics, held-out losses).

Probes only measure; babel_jax.dynamics interprets what they wrote into probes/<step>.json, read
back as result.py's ProbeResult (numpy only: this package imports nothing heavy on its own).
"""
