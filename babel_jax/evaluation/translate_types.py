"""Python types of HumanEval values, and how each language spells those types and their literals.

A `Type` comes from a type hint, from the values a problem's tests use, or from both (`unify`).
Statically typed languages render a value against its type (an int where a float is expected
becomes `3.0`, a list becomes `new List<long>{...}`); PHP and JavaScript render values as they are.
"""

from __future__ import annotations

import ast
import dataclasses
import math

from babel_jax.evaluation.humaneval import Untranslatable


@dataclasses.dataclass(frozen=True)
class Type:
  """kind: int float bool str none any unknown list dict tuple vtuple optional.

  `vtuple` is a tuple of varying length (`Tuple[str, ...]`); every language renders it as a list.
  `unknown` is what a bare `list` hint or an empty container leaves open.
  """
  kind: str
  args: tuple[Type, ...] = ()

  def __str__(self) -> str:
    names = {'list': 'List', 'dict': 'Dict', 'tuple': 'Tuple', 'optional': 'Optional'}
    if self.kind == 'vtuple':
      return f'Tuple[{self.args[0]}, ...]'
    if self.kind in names:
      return f'{names[self.kind]}[{", ".join(map(str, self.args))}]'
    return {'none': 'None', 'any': 'Any'}.get(self.kind, self.kind)


INT, FLOAT, BOOL, STR = Type('int'), Type('float'), Type('bool'), Type('str')
NONE, ANY, UNKNOWN = Type('none'), Type('any'), Type('unknown')


def list_of(t: Type) -> Type:
  return Type('list', (t,))


def optional(t: Type) -> Type:
  return t if t.kind in ('optional', 'none') else Type('optional', (t,))


def type_of(value) -> Type:
  """The type of a test value; containers unify their elements."""
  if isinstance(value, bool):
    return BOOL
  for python_type, t in ((int, INT), (float, FLOAT), (str, STR), (type(None), NONE)):
    if isinstance(value, python_type):
      return t
  if isinstance(value, list):
    return list_of(unify_all(map(type_of, value)))
  if isinstance(value, tuple):
    return Type('tuple', tuple(map(type_of, value)))
  if isinstance(value, dict):
    return Type('dict', (unify_all(map(type_of, value)), unify_all(map(type_of, value.values()))))
  raise Untranslatable(f'a test value has type {type(value).__name__}')


def unify_all(types) -> Type:
  result = UNKNOWN
  for t in types:
    result = unify(result, t)
  return result


def unify(a: Type, b: Type) -> Type:
  """The narrowest type holding both, e.g. int+float -> float, None+str -> Optional[str]."""
  if a == b or b.kind == 'unknown':
    return a
  if a.kind == 'unknown':
    return b
  if ANY in (a, b):
    return ANY
  if NONE in (a, b):
    return optional(b if a == NONE else a)
  if 'optional' in (a.kind, b.kind):
    strip = lambda t: t.args[0] if t.kind == 'optional' else t  # noqa: E731
    return optional(unify(strip(a), strip(b)))
  if {a.kind, b.kind} == {'int', 'float'}:
    return FLOAT
  if a.kind == b.kind and a.kind in ('list', 'dict', 'vtuple'):
    return Type(a.kind, tuple(map(unify, a.args, b.args)))
  if a.kind == b.kind == 'tuple' and len(a.args) == len(b.args):
    return Type('tuple', tuple(map(unify, a.args, b.args)))
  if {a.kind, b.kind} <= {'tuple', 'vtuple'}:  # tuples of different lengths: a sequence
    return Type('vtuple', (unify_all(a.args + b.args),))
  raise Untranslatable(f'values of different types: {a} and {b}')


_HINTS = {'int': INT, 'float': FLOAT, 'bool': BOOL, 'str': STR, 'Any': ANY, 'None': NONE,
          'list': list_of(UNKNOWN), 'List': list_of(UNKNOWN),
          'dict': Type('dict', (UNKNOWN, UNKNOWN)), 'Dict': Type('dict', (UNKNOWN, UNKNOWN)),
          'tuple': Type('vtuple', (UNKNOWN,)), 'Tuple': Type('vtuple', (UNKNOWN,))}


def parse_hint(node: ast.expr | None) -> Type:
  """A type hint (`List[int]`, `Optional[str]`, bare `list`, none at all) as a Type."""
  if node is None:
    return UNKNOWN
  if isinstance(node, ast.Constant) and node.value is None:
    return NONE
  if isinstance(node, ast.Name) and node.id in _HINTS:
    return _HINTS[node.id]
  if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
    name = node.value.id
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if name in ('Tuple', 'tuple') and len(items) == 2 and isinstance(items[1], ast.Constant) \
        and items[1].value is Ellipsis:
      return Type('vtuple', (parse_hint(items[0]),))
    args = tuple(map(parse_hint, items))
    kind = {'List': 'list', 'list': 'list', 'Dict': 'dict', 'dict': 'dict', 'Tuple': 'tuple',
            'tuple': 'tuple', 'Optional': 'optional'}.get(name)
    arity = {'list': 1, 'dict': 2, 'optional': 1}.get(kind, len(args))
    if kind is not None and len(args) == arity:
      return optional(args[0]) if kind == 'optional' else Type(kind, args)
  raise Untranslatable(f'unsupported type hint {ast.unparse(node)}')


def check_static(t: Type) -> None:
  """Raises unless a statically typed language can spell `t`."""
  if t.kind == 'any':
    raise Untranslatable('type Any (values of mixed types)')
  if t.kind in ('unknown', 'none'):
    raise Untranslatable('cannot infer the type (no hint, and no non-empty, non-None value)')
  for arg in t.args:
    check_static(arg)


def default_value(t: Type):
  """A Python value of type `t`: what a do-nothing function body would return."""
  return {'int': 0, 'float': 0.0, 'bool': False, 'str': '', 'list': [], 'vtuple': (), 'dict': {},
          'tuple': tuple(default_value(a) for a in t.args)}.get(t.kind)


def as_javascript(value):
  """`value` as JavaScript holds it: a float with an integral value is indistinguishable from
  an int."""
  if isinstance(value, float) and value.is_integer():
    return int(value)
  if isinstance(value, (list, tuple)):
    return type(value)(as_javascript(v) for v in value)
  if isinstance(value, dict):
    return {as_javascript(k): as_javascript(v) for k, v in value.items()}
  return value


def close(a, b) -> bool:
  """Python `==` with the tests' float tolerance (what the generated checks compare)."""
  number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
  if number(a) and number(b):
    return abs(a - b) <= 1e-6
  if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
    return type(a) is type(b) and len(a) == len(b) and all(map(close, a, b))
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(close(a[k], b[k]) for k in b)
  return type(a) is type(b) and a == b


def float_text(value: float) -> str:
  if not math.isfinite(value):
    raise Untranslatable(f'a test uses the non-finite float {value!r}')
  text = repr(value)
  return text if any(c in text for c in '.e') else text + '.0'


def escape(text: str, extra: dict[str, str], other) -> str:
  """Backslash-escapes a string for a C-like double-quoted literal; `other(ch)` spells control
  and (where the language wants it) non-ASCII characters, returning None to keep them as is."""
  table = {'\\': '\\\\', '"': '\\"', '\n': '\\n', '\t': '\\t', '\r': '\\r', **extra}
  out = []
  for ch in text:
    if ch in table:
      out.append(table[ch])
    elif ch < ' ' or ch == '\x7f' or ch > '\x7f':
      out.append(other(ch) or ch)
    else:
      out.append(ch)
  return '"' + ''.join(out) + '"'


def _utf16_escapes(ch: str) -> str:
  data = ch.encode('utf-16-be')
  return ''.join(f'\\u{int.from_bytes(data[i:i + 2], "big"):04x}' for i in range(0, len(data), 2))


def _octal(ch: str) -> str | None:
  return f'\\{ord(ch):03o}' if ord(ch) < 0x80 else None


class Literals:
  """How one language spells types and values. Static languages override `type_name`."""

  static = True
  int_bits = 63  # |int| < 2**int_bits

  def type_name(self, t: Type) -> str:
    raise NotImplementedError

  def literal(self, value, t: Type) -> str:
    """`value` (a test value) as a literal of type `t`."""
    kind = t.kind
    if kind == 'optional':
      return self.none(t) if value is None else self.some(value, t.args[0])
    if kind == 'bool' and isinstance(value, bool):
      return 'true' if value else 'false'
    if kind == 'int' and isinstance(value, int) and not isinstance(value, bool):
      if abs(value) >= 2 ** self.int_bits:
        raise Untranslatable(f'the integer {value} does not fit in {self.int_bits + 1} bits')
      return self.integer(value)
    if kind == 'float' and isinstance(value, (int, float)) and not isinstance(value, bool):
      return float_text(float(value))
    if kind == 'str' and isinstance(value, str):
      return self.string(value)
    if kind in ('list', 'vtuple') and isinstance(value, (list, tuple)):
      return self.sequence([self.literal(v, t.args[0]) for v in value], t)
    if kind == 'tuple' and isinstance(value, tuple) and len(value) == len(t.args):
      return self.tuple([self.literal(v, a) for v, a in zip(value, t.args)], t)
    if kind == 'dict' and isinstance(value, dict):
      key_type, value_type = t.args
      return self.mapping([(self.literal(k, key_type), self.literal(v, value_type))
                           for k, v in value.items()], t)
    raise Untranslatable(f'cannot render {value!r} as {t}')

  def expected(self, value, t: Type) -> str:
    """A literal standing alone as the expected result (C++ needs the exact scalar type)."""
    return self.literal(value, t)

  def doc_literal(self, value, t: Type) -> str:
    """A result as a docstring example shows it."""
    return self.literal(value, t)

  def integer(self, value: int) -> str:
    return str(value)

  def string(self, value: str) -> str:
    raise NotImplementedError

  def sequence(self, items: list[str], t: Type) -> str:
    raise NotImplementedError

  def tuple(self, items: list[str], t: Type) -> str:
    raise NotImplementedError

  def mapping(self, items: list[tuple[str, str]], t: Type) -> str:
    raise NotImplementedError

  def none(self, t: Type) -> str:
    raise NotImplementedError

  def some(self, value, inner: Type) -> str:
    return self.literal(value, inner)


class CppLiterals(Literals):
  """std::vector / std::map / std::tuple / std::optional; ints are `long` (64-bit on Linux)."""

  def type_name(self, t: Type) -> str:
    args = [self.type_name(a) for a in t.args]
    return {'int': 'long', 'float': 'double', 'bool': 'bool', 'str': 'std::string',
            'list': 'std::vector<{0}>', 'vtuple': 'std::vector<{0}>', 'dict': 'std::map<{0}, {1}>',
            'tuple': 'std::tuple<{all}>', 'optional': 'std::optional<{0}>'}[t.kind].format(
                *args, all=', '.join(args))

  def expected(self, value, t: Type) -> str:
    return self.literal(value, t) + 'L' if t == INT else self.literal(value, t)

  def string(self, value: str) -> str:
    if '\0' in value:
      raise Untranslatable('a test string contains a NUL character')
    # Always std::string: a bare "..." would call C's strlen(const char*) for HumanEval/23.
    return f'std::string({escape(value, {}, _octal)})'

  def sequence(self, items, t):
    name = self.type_name(t)
    return f'{name}({{{", ".join(items)}}})' if items else f'{name}()'

  def tuple(self, items, t):
    return f'{self.type_name(t)}({", ".join(items)})'

  def mapping(self, items, t):
    pairs = ', '.join(f'{{{k}, {v}}}' for k, v in items)
    return f'{self.type_name(t)}({{{pairs}}})' if items else f'{self.type_name(t)}()'

  def none(self, t):
    return f'{self.type_name(t)}()'

  def some(self, value, inner):
    return f'{self.type_name(optional(inner))}({self.literal(value, inner)})'


class CSharpLiterals(Literals):
  """List<T> / Dictionary<K, V> / Tuple<...>; Optional is `long?` or a null reference."""

  def type_name(self, t: Type) -> str:
    if t.kind == 'optional':
      inner = t.args[0]
      return self.type_name(inner) + ('?' if inner in (INT, FLOAT, BOOL) else '')
    args = [self.type_name(a) for a in t.args]
    return {'int': 'long', 'float': 'double', 'bool': 'bool', 'str': 'string',
            'list': 'List<{0}>', 'vtuple': 'List<{0}>', 'dict': 'Dictionary<{0}, {1}>',
            'tuple': 'Tuple<{all}>'}[t.kind].format(*args, all=', '.join(args))

  def integer(self, value):
    return f'{value}L'

  def string(self, value):
    return escape(value, {'\0': '\\0'}, _utf16_escapes)

  def sequence(self, items, t):
    return f'new {self.type_name(t)}{{{", ".join(items)}}}' if items \
        else f'new {self.type_name(t)}()'

  def tuple(self, items, t):
    return f'new {self.type_name(t)}({", ".join(items)})'

  def mapping(self, items, t):
    pairs = ', '.join(f'{{{k}, {v}}}' for k, v in items)
    return f'new {self.type_name(t)}{{{pairs}}}' if items else f'new {self.type_name(t)}()'

  def none(self, t):
    return 'null'


class JavaLiterals(Literals):
  """ArrayList<T> / HashMap<K, V> / a `Pair` record / Optional<T>; scalars unboxed at top level."""

  def type_name(self, t: Type, boxed: bool = False) -> str:
    scalars = {'int': ('long', 'Long'), 'float': ('double', 'Double'),
               'bool': ('boolean', 'Boolean'), 'str': ('String', 'String')}
    if t.kind in scalars:
      return scalars[t.kind][boxed]
    if t.kind == 'tuple' and len(t.args) != 2:
      raise Untranslatable(f'Java translation has only a Pair type, not a {len(t.args)}-tuple')
    args = [self.type_name(a, boxed=True) for a in t.args]
    return {'list': 'ArrayList<{0}>', 'vtuple': 'ArrayList<{0}>', 'dict': 'HashMap<{0}, {1}>',
            'tuple': 'Pair<{0}, {1}>', 'optional': 'Optional<{0}>'}[t.kind].format(*args)

  def integer(self, value):
    return f'{value}L'

  def string(self, value):
    # Not \uXXXX for control characters: javac decodes those before lexing the literal.
    return escape(value, {'\b': '\\b', '\f': '\\f'},
                  lambda ch: _octal(ch) or _utf16_escapes(ch))

  def sequence(self, items, t):
    name = self.type_name(t)
    return f'new {name}(Arrays.asList({", ".join(items)}))' if items else f'new {name}()'

  def tuple(self, items, t):
    return f'new {self.type_name(t)}({", ".join(items)})'

  def mapping(self, items, t):
    name = self.type_name(t)
    if not items:
      return f'new {name}()'
    if len(items) <= 10:
      return f'new {name}(Map.of({", ".join(f"{k}, {v}" for k, v in items)}))'
    entries = ', '.join(f'Map.entry({k}, {v})' for k, v in items)
    return f'new {name}(Map.ofEntries({entries}))'

  def none(self, t):
    return f'Optional.<{self.type_name(t.args[0], boxed=True)}>empty()'

  def some(self, value, inner):
    return f'Optional.of({self.literal(value, inner)})'


class GoLiterals(Literals):
  """Slices, maps, arrays `[N]T` for tuples (so only same-typed tuples), pointers for Optional."""

  def type_name(self, t: Type) -> str:
    if t.kind == 'tuple':
      if len(set(t.args)) != 1:
        raise Untranslatable(f'Go has no tuple type for {t} (mixed element types)')
      return f'[{len(t.args)}]{self.type_name(t.args[0])}'
    args = [self.type_name(a) for a in t.args]
    return {'int': 'int', 'float': 'float64', 'bool': 'bool', 'str': 'string', 'list': '[]{0}',
            'vtuple': '[]{0}', 'dict': 'map[{0}]{1}', 'optional': '*{0}'}[t.kind].format(*args)

  def string(self, value):
    return escape(value, {}, lambda ch: f'\\x{ord(ch):02x}' if ord(ch) < 0x80 else None)

  def sequence(self, items, t):
    return f'{self.type_name(t)}{{{", ".join(items)}}}'

  tuple = sequence

  def mapping(self, items, t):
    return f'{self.type_name(t)}{{{", ".join(f"{k}: {v}" for k, v in items)}}}'

  def none(self, t):
    return 'nil'

  def some(self, value, inner):
    return f'babelPtr[{self.type_name(inner)}]({self.literal(value, inner)})'

  def doc_literal(self, value, t):
    if t.kind == 'optional' and value is not None:  # babelPtr is the tests' helper, not shown
      return self.literal(value, t.args[0])
    return self.literal(value, t)


class DynamicLiterals(Literals):
  """PHP and JavaScript: values rendered by their own Python type; `t` is ignored."""

  static = False
  null = 'null'

  def literal(self, value, t: Type = ANY) -> str:
    if value is None:
      return self.null
    if isinstance(value, (list, tuple)):
      return f'[{", ".join(self.literal(v) for v in value)}]'
    if isinstance(value, dict):
      for key in value:
        self.check_key(key)
      return self.mapping([(self.literal(k), self.literal(v)) for k, v in value.items()], t)
    return super().literal(value, type_of(value))

  def check_key(self, key) -> None:
    if not isinstance(key, str):
      raise Untranslatable(f'a dict has the non-string key {key!r}')


class PhpLiterals(DynamicLiterals):
  """Arrays for lists, tuples and dicts; `null` for None."""

  def check_key(self, key):
    if not isinstance(key, (str, int)) or isinstance(key, bool):
      raise Untranslatable(f'a dict has the key {key!r}, which PHP arrays cannot hold')

  def string(self, value):
    return escape(value, {'$': '\\$', '\v': '\\v', '\f': '\\f', '\x1b': '\\e'},
                  lambda ch: f'\\x{ord(ch):02x}' if ord(ch) < 0x80 else None)

  def mapping(self, items, t):
    return f'[{", ".join(f"{k} => {v}" for k, v in items)}]'


class JavaScriptLiterals(DynamicLiterals):
  """Arrays, plain objects (string keys only), `undefined` for None; numbers are doubles."""

  null = 'undefined'
  int_bits = 53

  def string(self, value):
    return escape(value, {}, lambda ch: f'\\x{ord(ch):02x}' if ord(ch) < 0x80 else None)

  def mapping(self, items, t):
    return f'{{{", ".join(f"{k}: {v}" for k, v in items)}}}'
