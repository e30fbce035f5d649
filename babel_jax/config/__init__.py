"""Config schema: the one place every field, its type, default, doc and bounds are declared.

Config files in `configs/` start from `default_config()` (a ConfigDict) and change fields;
`--config.section.field=value` overrides them. `validate` then turns the ConfigDict into the
frozen, typed `Config` (one frozen dataclass per section, sections.py), rejecting unknown fields,
wrong types and impossible values with one-line messages that name the field, so a typo fails
before any work starts. Everything after validation reads the Config; a derived config is a new
one (`replace`). List fields are tuples in the Config and comma-separated text in the ConfigDict
and in config.json. This package imports no other babel_jax module but the errors.
"""

from babel_jax.config.forms import (default_config, from_json, load_file, replace, to_json,
                                    validate)
from babel_jax.config.schema import Section, bounds_text, budgets, items, joined, knob, pairs
from babel_jax.config.sections import (COLUMN_ROLES, MESH_AXES, PLANTED_KINDS, Calibrate,
                                       Checkpoint, Config, Corpus, Data, Dynamics, Eval,
                                       Experiment, Mesh, Model, Probe, Tokenizer, Train)
from babel_jax.errors import ConfigError

__all__ = ['COLUMN_ROLES', 'Calibrate', 'Checkpoint', 'Config', 'ConfigError', 'Corpus', 'Data',
           'Dynamics', 'Eval', 'Experiment', 'MESH_AXES', 'Mesh', 'Model', 'PLANTED_KINDS',
           'Probe', 'Section', 'Tokenizer', 'Train', 'bounds_text', 'budgets', 'default_config',
           'from_json', 'items', 'joined', 'knob', 'load_file', 'pairs', 'replace', 'to_json', 'validate']
