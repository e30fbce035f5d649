"""How a typed config section declares and checks its fields.

`knob` declares one field: its default, a one-line doc and its bounds together. `Section` is the
base of every section (a frozen dataclass of knobs): building one coerces each value to the
field's annotated type (an int to a float, comma-separated text to a tuple), checks the bounds
and choices the knobs declare, then runs the section's own `check()`. A section therefore never
exists with a value outside its bounds, and `dataclasses.replace` re-validates.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import typing
from typing import Any, Iterable

from babel_jax.errors import ConfigError


def knob(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
         gt: float | None = None, lt: float | None = None,
         choices: tuple[Any, ...] | None = None) -> Any:
  """A config field: `default`, a one-line `doc`, and its bounds: `min`/`max` inclusive, `gt`/`lt`
  strict, `choices` the allowed values. On a tuple field they bound every item."""
  # pylint: disable=redefined-builtin
  return dataclasses.field(default=default, metadata={
      'doc': doc, 'min': min, 'max': max, 'gt': gt, 'lt': lt, 'choices': choices})


def section(cls: type, doc: str) -> Any:
  """A field of the top-level Config holding one section, built from its defaults."""
  return dataclasses.field(default_factory=cls, metadata={'doc': doc, 'section': True})


def items(text: str | Iterable[str]) -> tuple[str, ...]:
  """A comma-separated list (or a list of strings) as its non-empty, stripped items."""
  parts = text.split(',') if isinstance(text, str) else text
  return tuple(s.strip() for s in parts if s.strip())


def joined(values: Iterable[Any]) -> str:
  """A list field in its text form, as the command line and config.json write it: comma-separated,
  whole-number floats without a fraction ('1,0,0'), others exactly (repr)."""
  return ','.join(_item_text(v) for v in values)


def _item_text(v: Any) -> str:
  if isinstance(v, float) and math.isfinite(v) and v.is_integer():
    return str(int(v))
  return repr(v) if isinstance(v, float) else str(v)


def pairs(text: str | Iterable[str], name: str) -> dict[str, str]:
  """'a=b,c=d' (or ('a=b', 'c=d')) -> {'a': 'b', 'c': 'd'}: KEY=VALUE entries, each key once."""
  out = {}
  for item in items(text):
    key, sep, value = (s.strip() for s in item.partition('='))
    if not sep or not key or key in out:
      raise ConfigError(f'{name} entry {item!r} must look like KEY=VALUE, each key once')
    out[key] = value
  return out


def budgets(text: str | Iterable[str], name: str) -> dict[str, int]:
  """'python=11e9,php=23e9' -> {'python': 11_000_000_000, ...}: positive amounts per language."""
  out = {}
  for key, value in pairs(text, name).items():
    try:
      amount = float(value)
    except ValueError:
      amount = -1.0
    if not amount > 0 or not math.isfinite(amount):
      raise ConfigError(f'{name} entry {key}={value!r} must look like language=NUMBER (> 0, '
                        'e.g. python=11e9)')
    out[key] = int(amount)
  return out


def did_you_mean(name: str, known: Iterable[str]) -> str:
  """' (did you mean 'x'?)' for the closest known name, or ''."""
  close = difflib.get_close_matches(name, list(known), n=1)
  return f' (did you mean {close[0]!r}?)' if close else ''


_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
  """The annotated type of each field of a section class (resolved once)."""
  if cls not in _HINTS:
    _HINTS[cls] = typing.get_type_hints(cls)
  return _HINTS[cls]


class Section:
  """Base of the config's sections; a subclass is a frozen dataclass of `knob`s with SECTION set
  to its name in the Config ('' for the Config itself)."""
  SECTION = ''

  def __post_init__(self) -> None:
    types = field_types(type(self))
    fields = dataclasses.fields(self)
    for f in fields:
      object.__setattr__(self, f.name, _coerce(self._path(f.name), types[f.name],
                                               getattr(self, f.name)))
    for f in fields:
      if not f.metadata.get('section'):
        _check_bounds(self._path(f.name), f.metadata, getattr(self, f.name))
    self.check()

  def check(self) -> None:
    """Rules between the section's fields (a field's own bounds are its knob's)."""

  def _path(self, field: str) -> str:
    """'section.field', the name errors and the command line use."""
    return f'{self.SECTION}.{field}' if self.SECTION else field

  def to_dict(self) -> dict[str, Any]:
    """The JSON form: list fields as comma-separated text (`joined`), sections nested."""
    out = {}
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if isinstance(value, Section):
        value = value.to_dict()
      elif isinstance(value, tuple):
        value = joined(value)
      out[f.name] = value
    return out


_KIND = {int: 'integers', float: 'numbers', str: 'names'}


def _coerce(name: str, tp: Any, value: Any) -> Any:
  """`value` as type `tp`, or a one-line ConfigError naming the field."""
  if typing.get_origin(tp) is tuple:
    item_tp = typing.get_args(tp)[0]
    if isinstance(value, str):
      raw: Iterable[Any] = value.split(',')
    elif isinstance(value, (list, tuple)):
      raw = value
    else:
      raise ConfigError(f'config field {name!r} must be comma-separated {_KIND[item_tp]} (text '
                        f'or a list), got {type(value).__name__} {value!r}')
    out = []
    for x in raw:
      if isinstance(x, str):
        x = x.strip()
        if not x:
          continue
        if item_tp is not str:
          try:
            x = item_tp(x)
          except ValueError:
            raise ConfigError(f'config field {name!r} must be comma-separated {_KIND[item_tp]}, '
                              f'got {value!r}') from None
      x = _scalar(name, item_tp, x, f' in {value!r}')
      if isinstance(x, float) and not math.isfinite(x):
        raise ConfigError(f'config field {name!r} must hold finite numbers, got {value!r}')
      out.append(x)
    return tuple(out)
  if isinstance(tp, type) and issubclass(tp, Section):
    if not isinstance(value, tp):
      raise ConfigError(f'config field {name!r} must be a section, got {value!r}')
    return value
  return _scalar(name, tp, value)


def _scalar(name: str, tp: type, value: Any, where: str = '') -> Any:
  if tp is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
    return float(value)
  if tp is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
    return int(value)
  if tp in (str, bool) and isinstance(value, tp):
    return value
  raise ConfigError(f'config field {name!r} must be {tp.__name__}, got '
                    f'{type(value).__name__} {value!r}{where}')


def bounds_text(meta: Any) -> str:
  """A knob's bounds in words: '> 0', '>= 0', 'in (0, 1]', ...; '' without bounds."""
  lo = ('[', meta['min']) if meta['min'] is not None else (
      ('(', meta['gt']) if meta['gt'] is not None else None)
  hi = (']', meta['max']) if meta['max'] is not None else (
      (')', meta['lt']) if meta['lt'] is not None else None)
  if lo and hi:
    return f'in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}'
  if lo:
    return f'{">=" if lo[0] == "[" else ">"} {lo[1]}'
  if hi:
    return f'{"<=" if hi[0] == "]" else "<"} {hi[1]}'
  return ''


def _within(meta: Any, v: Any) -> bool:
  return ((meta['min'] is None or v >= meta['min']) and (meta['gt'] is None or v > meta['gt'])
          and (meta['max'] is None or v <= meta['max']) and (meta['lt'] is None or v < meta['lt']))


def _check_bounds(name: str, meta: Any, value: Any) -> None:
  many = isinstance(value, tuple)
  for v in value if many else (value,):
    choices = meta['choices']
    if choices is not None and v not in choices:
      if many:
        raise ConfigError(f'config field {name!r} names {v!r}; expected some of {choices}')
      raise ConfigError(f'config field {name!r} is {v!r}; expected one of {choices}')
    if not _within(meta, v):
      got = f'{v} (in {joined(value)!r})' if many else f'{v}'
      raise ConfigError(f'config field {name!r} must be {bounds_text(meta)}'
                        f'{" (each item)" if many else ""}, got {got}')
