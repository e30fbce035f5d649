"""babel_jax: how code language models learn several languages, and which mixture to train on.

Pipeline: data (corpus, tokenizer, grain) -> model -> train -> probes -> mixture -> evaluation.
"""

__version__ = '0.1.0'
