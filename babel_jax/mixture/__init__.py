"""Decide: mixture strategies (strategies.py) and the Babel Tower mixture from measured dynamics
(optimize.py, Algorithm 1 on the fits of babel_jax.dynamics); each returns a data.mixture_spec
MixtureSpec."""
