"""babel_jax: how code language models learn several languages, and which mixture to train on.

The pipeline's story, one package per step: data (corpus, tokenizer, grain) -> model -> train
-> measure (probes, evaluation) -> interpret (dynamics) -> decide (mixture) -> orchestrate
(experiment); runtime holds the mesh, the run directory and checkpoints. docs/method.md
explains the method.
"""

__version__ = '0.1.0'
