"""The config's other forms: the ConfigDict of config files and --config overrides, and JSON.

`default_config()` is the ConfigDict `configs/*.py` start from, generated from the sections'
defaults (list fields as comma-separated text, the way the command line writes them).
`validate` turns such a ConfigDict (or a dict, e.g. a config.json) into the frozen, typed
`Config`; everything after it reads that. `replace` derives a new, validated Config.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Any, Mapping

import ml_collections

from babel_jax.config.schema import Section, did_you_mean, field_types
from babel_jax.config.sections import Config
from babel_jax.errors import ConfigError


def default_config() -> ml_collections.ConfigDict:
  """Every config field with its default, as the ConfigDict config files change."""
  return ml_collections.ConfigDict(Config().to_dict())


def load_file(path: str, *args: str) -> ml_collections.ConfigDict:
  """`get_config(*args)` of the config file at `path`, loaded as --config loads it: for a config
  that starts from another (configs/mixtures.py from demo.py) and for the tests."""
  name = 'configs_' + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(*args)


def validate(cfg: Any) -> Config:
  """The typed Config of a ConfigDict (or dict): unknown fields, wrong types and values out of
  bounds raise a one-line ConfigError naming the field. A Config is returned as it is (it was
  validated when it was built)."""
  if isinstance(cfg, Config):
    return cfg
  if isinstance(cfg, ml_collections.ConfigDict):
    cfg = cfg.to_dict()
  if not isinstance(cfg, Mapping):
    raise ConfigError(f'a config must be a ConfigDict or a Config, got {type(cfg).__name__}')
  return _build(cfg)


def _build(values: Mapping[str, Any], where: str = '') -> Config:
  types = field_types(Config)
  _known(values, types, '', where)
  kw = {}
  for key, value in values.items():
    tp = types[key]
    if isinstance(tp, type) and issubclass(tp, Section) and not isinstance(value, tp):
      if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()
      if not isinstance(value, Mapping):
        raise ConfigError(f'config field {key!r} must be a section, got {value!r}')
      _known(value, field_types(tp), f'{key}.', where)
      value = tp(**value)
    kw[key] = value
  return Config(**kw)


def _known(values: Mapping[str, Any], known: Mapping[str, Any], prefix: str, where: str) -> None:
  for key in values:
    if key not in known:
      raise ConfigError(f'unknown config field {prefix + str(key)!r}{where}'
                        f'{did_you_mean(str(key), known)}; known fields here: '
                        f'{", ".join(sorted(known))}')


def replace(cfg: Any, **changes: Any) -> Config:
  """A new validated Config: `cfg` with `changes`, each 'section.field' (e.g.
  `replace(cfg, **{'train.steps': 5})`), 'seed', or a section name with a section or a dict of
  its fields. List fields take tuples or comma-separated text."""
  cfg = validate(cfg)
  types = field_types(Config)
  top: dict[str, Any] = {}
  fields: dict[str, dict[str, Any]] = {}
  for key, value in changes.items():
    name, dot, field = key.partition('.')
    if name not in types:
      raise ConfigError(f'unknown config field {key!r}{did_you_mean(name, types)}')
    is_section = issubclass(types[name], Section) if isinstance(types[name], type) else False
    if dot and not is_section:
      raise ConfigError(f'unknown config field {key!r}: {name!r} is no section')
    if dot:
      if field not in field_types(types[name]):
        raise ConfigError(f'unknown config field {key!r}'
                          f'{did_you_mean(field, field_types(types[name]))}')
      fields.setdefault(name, {})[field] = value
    elif is_section and isinstance(value, Mapping):
      fields.setdefault(name, {}).update(value)
    else:
      top[name] = value
  for name, values in fields.items():
    top[name] = dataclasses.replace(top.get(name, getattr(cfg, name)), **values)
  return dataclasses.replace(cfg, **top)


def to_json(cfg: Any) -> str:
  """config.json of a run: sorted keys, list fields as comma-separated text."""
  return json.dumps(validate(cfg).to_dict(), indent=2, sort_keys=True)


def from_json(text: str) -> Config:
  """The Config of a saved config.json (list fields as text, as written, or as JSON lists);
  fields it lacks take today's defaults."""
  values = json.loads(text)
  if not isinstance(values, Mapping):
    raise ConfigError(f'a saved config must be a JSON object, got {type(values).__name__}')
  return _build(values, ' in saved config')
