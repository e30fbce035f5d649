"""Planted knowledge: seeded synthetic facts, taught in the primary language, asked for in others.

A fact is a made-up function name bound to a small, checkable behaviour (a `family` of
behaviours, a `form` within it, and constants). Taught facts are written into the primary
language's training data only; each has an untaught twin (same family and form, fresh name and
constants) that no language ever trains on, so asking for both in a new language separates
knowledge carried over from the primary language from generic ability. `evaluate` is the
ground truth; `render` writes a fact in any of the 7 evaluation languages;
babel_jax/evaluation/facts_check.py runs every rendering in the evaluation sandbox and compares
what it prints with `evaluate` (this module imports nothing of the evaluation).
See docs/facts.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from typing import Any, Sequence

import numpy as np


LANGUAGES = ('python', 'javascript', 'cpp', 'java', 'go', 'php', 'csharp')

FAMILIES = ('fold', 'string', 'table')
FORMS = {
    'fold': ('affine', 'shift', 'xor'),  # (x * a + b) % m, (x + a) % m * b, (x ^ a) + b
    'string': ('wrap', 'reverse', 'repeat'),  # P + s + S, reversed(s) + A, s * k + A
    'table': ('keys3', 'keys4', 'keys5'),  # {key: value} lookup with a default
}
PARAMS = {'affine': ('a', 'b', 'm'), 'shift': ('a', 'm', 'b'), 'xor': ('a', 'b'),
          'wrap': ('prefix', 'suffix'), 'reverse': ('affix',), 'repeat': ('times', 'affix'),
          'keys3': ('keys', 'values', 'default'), 'keys4': ('keys', 'values', 'default'),
          'keys5': ('keys', 'values', 'default')}  # each form's constants, in `Fact.params` order
INPUT_TYPES = {'fold': int, 'string': str, 'table': int}
MAX_INT_INPUT = 1_000_000  # int inputs lie in [0, MAX_INT_INPUT): no overflow, no negative %
MAX_STRING_INPUT = 16  # string inputs: at most this many lower-case ASCII letters

# Names: 2-3 syllables, each an onset, a vowel and sometimes a coda ("zokelin").
_ONSETS = 'bdfgklmnprstvz'
_VOWELS = 'aeiou'
_CODAS = 'nrlsk'
_CODA_P = 0.3
NAME_PATTERN = re.compile(f'(?:[{_ONSETS}][{_VOWELS}][{_CODAS}]?){{2,3}}')
_STRING_INPUT = re.compile(f'[a-z]{{0,{MAX_STRING_INPUT}}}')

# Keywords and predeclared names of the 7 languages, the names their programs here define or
# call, and every identifier of the name grammar that a toolchain here declares (Python's
# builtins, the PHP and libc/libstdc++ functions, node's globals). Written out, not read from the
# running toolchains, so that the names of a seed never depend on the machine; facts_test checks
# them against the live toolchains.
_KEYWORDS = {
    'python': '''and as assert async await break case class continue def del elif else except
        false finally for from global if import in is lambda match none nonlocal not or pass
        raise return true try type while with yield abs aiter all anext any ascii bin bool
        breakpoint bytearray bytes callable chr classmethod compile complex copyright credits
        delattr dict dir divmod ellipsis enumerate eval exec exit filter float format frozenset
        getattr globals hasattr hash help hex id input int isinstance issubclass iter len
        license list locals map max memoryview min next notimplemented object oct open ord pow
        print property quit range repr reversed round set setattr slice sorted staticmethod str
        sum super tuple vars zip taberror''',
    'javascript': '''await break case catch class const continue debugger default delete do
        else enum export extends false finally for function if implements import in instanceof
        interface let new null package private protected public return static super switch this
        throw true try typeof var void while with yield arguments eval undefined async of
        console process require module exports global globalthis escape unescape date file
        response fetch crypto performance navigator''',
    'cpp': '''alignas alignof and and_eq asm auto bitand bitor bool break case catch char
        char8_t char16_t char32_t class compl concept const consteval constexpr constinit
        const_cast continue co_await co_return co_yield decltype default delete do double
        dynamic_cast else enum explicit export extern false final float for friend goto if inline
        int long main mutable namespace new noexcept not not_eq nullptr operator or or_eq
        override private protected public register reinterpret_cast requires return short signed
        sizeof static static_assert static_cast std string struct switch template this
        thread_local throw true try typedef typeid typename union unsigned using virtual void
        volatile wchar_t while xor xor_eq base before begin data divides ferror fileno fopen line
        message messages minus modes modulus move name negate none perror popen remove rename
        reserve resize size time timeval tinfo''',
    'java': '''abstract assert boolean break byte case catch char class const continue default
        do double else enum extends final finally float for goto if implements import instanceof
        int interface long native new package private protected public return short static
        strictfp super switch synchronized this throw throws transient try void volatile while
        true false null var yield record sealed permits module open requires exports main
        problem string system equals hashcode tostring getclass notify notifyall wait clone
        finalize map''',
    'go': '''break case chan const continue default defer else fallthrough for func go goto if
        import interface map package range return select struct switch type var bool byte
        complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string uint
        uint8 uint16 uint32 uint64 uintptr true false iota nil any comparable append cap clear
        close complex copy delete imag len make max min new panic print println real recover
        main init fmt strings''',
    'php': '''__halt_compiler abstract and array as break callable case catch class clone const
        continue declare default die do echo else elseif empty enddeclare endfor endforeach
        endif endswitch endwhile eval exit extends final finally fn for foreach function global
        goto if implements include include_once instanceof insteadof interface isset list match
        namespace new or print private protected public readonly require require_once return
        static switch throw trait try unset use var while xor yield enum parent self true false
        null date define dirname file fopen linkinfo popen range rename time''',
    'csharp': '''abstract as base bool break byte case catch char checked class const continue
        decimal default delegate do double else enum event explicit extern false finally fixed
        float for foreach goto if implicit in int interface internal is lock long namespace new
        null object operator out override params private protected public readonly ref return
        sbyte sealed short sizeof stackalloc static string struct switch this throw true try
        typeof uint ulong unchecked unsafe ushort using virtual void volatile while add alias
        and ascending args async await by descending dynamic equals file from get global group
        init into join let managed nameof nint not notnull nuint on or orderby partial record
        remove required scoped select set unmanaged value var when where with yield main
        problem console system linq enumerable''',
}
RESERVED = frozenset(
    {w.lower() for words in _KEYWORDS.values() for w in words.split()}
    | {'x', 'y', 'c', 'i', 'v', 'ok'})  # the renderings' own variables


@dataclasses.dataclass(frozen=True)
class Fact:
  """A made-up function name bound to one small behaviour: family, form and its constants."""
  name: str
  family: str  # one of FAMILIES
  form: str  # one of FORMS[family]
  params: tuple[tuple[str, Any], ...]  # (constant, value), values int, str or tuple of ints
  taught: bool

  def __post_init__(self):
    if self.family not in FORMS or self.form not in FORMS[self.family]:
      raise ValueError(f'{self.name}: unknown family/form {self.family}/{self.form}')
    if tuple(k for k, _ in self.params) != PARAMS[self.form]:
      raise ValueError(f'{self.name}: a {self.form} fact has constants {PARAMS[self.form]}, '
                       f'got {self.params}')
    if not is_valid_name(self.name):
      raise ValueError(f'{self.name!r} is no valid fact name (see NAME_PATTERN and RESERVED)')

  def param(self, key: str) -> Any:
    """The value of one constant."""
    return dict(self.params)[key]

  def to_json(self) -> dict:
    """A JSON-ready dict (tuples become lists)."""
    return {'name': self.name, 'family': self.family, 'form': self.form,
            'params': {k: list(v) if isinstance(v, tuple) else v for k, v in self.params},
            'taught': self.taught}

  @classmethod
  def from_json(cls, d: dict) -> 'Fact':
    """The fact `to_json` wrote (its params in their form's order, whatever the JSON's key order:
    a manifest is written with sorted keys)."""
    params = tuple((k, tuple(v) if isinstance(v, list) else v)
                   for k, v in ((k, d['params'][k]) for k in PARAMS[d['form']]))
    return cls(d['name'], d['family'], d['form'], params, bool(d['taught']))


@dataclasses.dataclass(frozen=True)
class FactSet:
  """`count` taught facts and their untaught twins (untaught[i] is taught[i]'s twin)."""
  seed: int
  count: int
  taught: tuple[Fact, ...]
  untaught: tuple[Fact, ...]

  @property
  def facts(self) -> tuple[Fact, ...]:
    return self.taught + self.untaught

  def by_name(self, name: str) -> Fact:
    for fact in self.facts:
      if fact.name == name:
        return fact
    raise KeyError(name)

  def twin(self, fact: Fact) -> Fact:
    """The other fact of `fact`'s pair."""
    for t, u in zip(self.taught, self.untaught):
      if fact == t:
        return u
      if fact == u:
        return t
    raise KeyError(fact.name)

  def to_json(self) -> dict:
    """A JSON-ready dict for a corpus manifest: seed, count and every fact as generated."""
    return {'seed': self.seed, 'count': self.count,
            'taught': [f.to_json() for f in self.taught],
            'untaught': [f.to_json() for f in self.untaught]}

  @classmethod
  def from_json(cls, d: dict | str) -> 'FactSet':
    """The recorded set (the record, not today's generator, is the truth for its corpus)."""
    d = json.loads(d) if isinstance(d, str) else d
    return cls(int(d['seed']), int(d['count']),
               tuple(Fact.from_json(f) for f in d['taught']),
               tuple(Fact.from_json(f) for f in d['untaught']))


@dataclasses.dataclass(frozen=True)
class Rendering:
  """One fact written in one language; `text` (= document) is head+signature+body+uses+tail."""
  language: str
  head: str  # what the file needs first: <?php, package and imports, includes, `class Problem {`
  signature: str  # the function header up to and including the opening of the body
  body: str  # the indented statements and the closing brace (Python: the statements)
  uses: str  # example calls, each with the printed result in a comment (in main where needed)
  tail: str  # what closes the file after the uses (the class's brace in Java and C#)

  @property
  def definition(self) -> str:
    return self.signature + self.body

  @property
  def text(self) -> str:
    return self.head + self.signature + self.body + self.uses + self.tail


# --- generation -------------------------------------------------------------------------------

def is_valid_name(name: str) -> bool:
  """A name of the syllable grammar that no language reserves or predeclares."""
  return bool(NAME_PATTERN.fullmatch(name)) and name not in RESERVED


def _syllable(rng: np.random.Generator, coda: bool = True) -> str:
  s = _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
  if coda and rng.random() < _CODA_P:
    s += _CODAS[rng.integers(len(_CODAS))]
  return s


def _fresh_name(rng: np.random.Generator, taken: set[str]) -> str:
  while True:
    name = ''.join(_syllable(rng) for _ in range(int(rng.integers(2, 4))))
    if is_valid_name(name) and name not in taken:
      taken.add(name)
      return name


def _affix(rng: np.random.Generator) -> str:
  return _syllable(rng)


def _draw_params(family: str, form: str, rng: np.random.Generator) -> dict[str, Any]:
  if form == 'affine':
    return {'a': int(rng.integers(2, 10)), 'b': int(rng.integers(1, 20)),
            'm': int(rng.integers(7, 30))}
  if form == 'shift':
    return {'a': int(rng.integers(1, 20)), 'm': int(rng.integers(5, 20)),
            'b': int(rng.integers(2, 10))}
  if form == 'xor':
    return {'a': int(rng.integers(1, 32)), 'b': int(rng.integers(1, 20))}
  if form == 'wrap':
    prefix = _affix(rng)
    suffix = _affix(rng)
    while suffix == prefix:
      suffix = _affix(rng)
    return {'prefix': prefix, 'suffix': suffix}
  if form == 'reverse':
    return {'affix': _affix(rng)}
  if form == 'repeat':
    return {'times': int(rng.integers(2, 4)), 'affix': _affix(rng)}
  if family == 'table':
    n = int(form[len('keys'):])
    keys = tuple(sorted(int(k) for k in rng.choice(10, n, replace=False)))  # one digit: short
    values = tuple(int(v) for v in rng.integers(0, 100, n))
    return {'keys': keys, 'values': values, 'default': int(rng.integers(0, 100))}
  raise ValueError(f'unknown form {family}/{form}')


def _twin_params(family: str, form: str, params: dict[str, Any],
                 rng: np.random.Generator) -> dict[str, Any]:
  """Fresh constants of the same form: every constant differs from `params`'."""
  while True:
    twin = _draw_params(family, form, rng)
    if all(twin[k] != v for k, v in params.items()):
      return twin


def generate(count: int, seed: int) -> FactSet:
  """`count` taught facts and their untaught twins, a pure function of (count, seed).

  Families take turns (fold, string, table, fold, ...); fact i draws from a stream of its own
  (seed, i), so the first n facts of a larger set are the facts of a set of n. Names are unique
  across both halves.
  """
  if count < 0 or seed < 0:
    raise ValueError(f'count and seed must be >= 0, got {count}, {seed}')
  taken: set[str] = set()
  taught, untaught = [], []
  for i in range(count):
    rng = np.random.default_rng([seed, i])
    family = FAMILIES[i % len(FAMILIES)]
    form = FORMS[family][int(rng.integers(len(FORMS[family])))]
    params = _draw_params(family, form, rng)
    twin = _twin_params(family, form, params, rng)
    for out, p, is_taught in ((taught, params, True), (untaught, twin, False)):
      out.append(Fact(_fresh_name(rng, taken), family, form, tuple(p.items()), is_taught))
  return FactSet(seed, count, tuple(taught), tuple(untaught))


def sample_inputs(fact: Fact, count: int, seed: int = 0) -> list:
  """`count` seeded inputs for `fact` (tables: keys and misses alike), different per fact."""
  rng = np.random.default_rng([seed, zlib.crc32(fact.name.encode())])
  out = []
  for _ in range(count):
    if fact.family == 'fold':
      out.append(int(rng.integers(0, 100)))
    elif fact.family == 'table':
      keys = fact.param('keys')
      out.append(int(keys[rng.integers(len(keys))]) if rng.random() < 0.5
                 else int(rng.integers(0, 20)))  # misses, and keys again by chance
    else:
      out.append(''.join(_syllable(rng, coda=False) for _ in range(int(rng.integers(1, 3)))))
  return out


def example_inputs(fact: Fact, count: int = 3) -> list:
  """The inputs a fact's training document shows (a probe may ask for others)."""
  return sample_inputs(fact, count, seed=0xFAC7)


# --- ground truth -----------------------------------------------------------------------------

def _check_input(fact: Fact, x) -> None:
  if INPUT_TYPES[fact.family] is str:
    if not isinstance(x, str) or not _STRING_INPUT.fullmatch(x):
      raise ValueError(f'{fact.name} takes a string of at most {MAX_STRING_INPUT} lower-case '
                       f'letters, got {x!r}')
  elif isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < MAX_INT_INPUT:
    raise ValueError(f'{fact.name} takes an int in [0, {MAX_INT_INPUT}), got {x!r}')


def evaluate(fact: Fact, x):
  """The fact's behaviour on `x`, computed in Python (the ground truth every rendering meets)."""
  _check_input(fact, x)
  p = dict(fact.params)
  if fact.form == 'affine':
    return (x * p['a'] + p['b']) % p['m']
  if fact.form == 'shift':
    return (x + p['a']) % p['m'] * p['b']
  if fact.form == 'xor':
    return (x ^ p['a']) + p['b']
  if fact.form == 'wrap':
    return p['prefix'] + x + p['suffix']
  if fact.form == 'reverse':
    return x[::-1] + p['affix']
  if fact.form == 'repeat':
    return x * p['times'] + p['affix']
  return dict(zip(p['keys'], p['values'])).get(x, p['default'])


# --- renderings -------------------------------------------------------------------------------

_INDENT = {'python': '    ', 'javascript': '    ', 'cpp': '    ', 'php': '    ', 'go': '\t',
           'java': '        ', 'csharp': '        '}  # a body's statements
_STEP = {'go': '\t'}  # one nesting level inside a body (default four spaces)
_CLOSE = {'python': '', 'java': '    }\n', 'csharp': '    }\n'}  # default '}\n'
_SEMI = {'python': '', 'go': ''}  # default ';'


def _signature(fact: Fact, lang: str) -> str:
  n = fact.name
  t = {'go': 'string', 'cpp': 'std::string', 'java': 'String', 'csharp': 'string'}.get(lang)
  t = t if fact.family == 'string' else 'int'
  return {
      'python': f'def {n}(x):\n',
      'javascript': f'function {n}(x) {{\n',
      'php': f'function {n}($x) {{\n',
      'go': f'func {n}(x {t}) {t} {{\n',
      'cpp': f'{t} {n}({t} x) {{\n',
      'java': f'    public static {t} {n}({t} x) {{\n',
      'csharp': f'    public static {t} {n}({t} x) {{\n',
  }[lang]


def _q(s: str) -> str:
  return '"' + s + '"'  # fact strings are lower-case letters: no escapes in any language


def _fold_expr(fact: Fact, lang: str) -> str:
  p, x = dict(fact.params), '$x' if lang == 'php' else 'x'
  if fact.form == 'affine':
    mul = f'{x}*{p["a"]} + {p["b"]}' if lang == 'go' else f'{x} * {p["a"]} + {p["b"]}'  # gofmt
    return f'({mul}) % {p["m"]}'
  if fact.form == 'shift':
    return f'({x} + {p["a"]}) % {p["m"]} * {p["b"]}'
  return f'({x} ^ {p["a"]}) + {p["b"]}'


def _string_lines(fact: Fact, lang: str) -> list[str]:
  """The body's statements; a leading tab marks one more level of nesting."""
  p = dict(fact.params)
  cat = ' . ' if lang == 'php' else ' + '
  x = '$x' if lang == 'php' else 'x'
  if fact.form == 'wrap':
    return [f'return {_q(p["prefix"])}{cat}{x}{cat}{_q(p["suffix"])}']
  a = _q(p['affix'])
  if fact.form == 'reverse':
    if lang == 'go':
      return ['y := ""', 'for _, c := range x {', '\ty = string(c) + y', '}', f'return y + {a}']
    return ['return ' + {
        'python': 'x[::-1]', 'javascript': '[...x].reverse().join("")', 'php': 'strrev($x)',
        'cpp': 'std::string(x.rbegin(), x.rend())', 'java': 'new StringBuilder(x).reverse()',
        'csharp': 'new string(x.Reverse().ToArray())'}[lang] + cat + a]
  k = p['times']
  if lang == 'cpp':
    return ['std::string y;', f'for (int i = 0; i < {k}; i++) y += x;', f'return y + {a}']
  return ['return ' + {
      'python': f'x * {k}', 'javascript': f'x.repeat({k})', 'php': f'str_repeat($x, {k})',
      'go': f'strings.Repeat(x, {k})', 'java': f'x.repeat({k})',
      'csharp': f'string.Concat(Enumerable.Repeat(x, {k}))'}[lang] + cat + a]


def _table_lines(fact: Fact, lang: str) -> list[str]:
  p = dict(fact.params)
  pairs = list(zip(p['keys'], p['values']))
  d = p['default']
  if lang == 'python':
    return ['return {' + ', '.join(f'{k}: {v}' for k, v in pairs) + f'}}.get(x, {d})']
  if lang == 'javascript':
    return ['return {' + ', '.join(f'{k}: {v}' for k, v in pairs) + f'}}[x] ?? {d}']
  if lang == 'php':
    return ['return [' + ', '.join(f'{k} => {v}' for k, v in pairs) + f'][$x] ?? {d}']
  if lang == 'java':
    return ['return Map.of(' + ', '.join(f'{k}, {v}' for k, v in pairs)
            + f').getOrDefault(x, {d})']
  if lang == 'go':
    table = 'map[int]int{' + ', '.join(f'{k}: {v}' for k, v in pairs) + '}'
    return [f'if v, ok := {table}[x]; ok {{', '\treturn v', '}', f'return {d}']
  # C++ and C#: a switch whose every section returns.
  return (['switch (x) {'] + [f'\tcase {k}: return {v};' for k, v in pairs]
          + [f'\tdefault: return {d};', '}'])


def _statements(fact: Fact, lang: str) -> list[str]:
  if fact.family == 'fold':
    return [f'return {_fold_expr(fact, lang)}']
  return _string_lines(fact, lang) if fact.family == 'string' else _table_lines(fact, lang)


def _body(fact: Fact, lang: str) -> str:
  semi, step = _SEMI.get(lang, ';'), _STEP.get(lang, '    ')
  out = []
  for line in _statements(fact, lang):
    depth = len(line) - len(line.lstrip('\t'))
    line = line.lstrip('\t')
    # Statements end in a semicolon; block openers, closers and C-style finished ones do not.
    if semi and not line.endswith(('{', '}', ';')):
      line += semi
    out.append(_INDENT[lang] + step * depth + line + '\n')
  return ''.join(out) + _CLOSE.get(lang, '}\n')


def _needs(fact: Fact, lang: str) -> set[str]:
  """Imports (Go, Java), includes (C++) and usings (C#) the fact's body needs."""
  if lang == 'go' and fact.form == 'repeat':
    return {'strings'}
  if lang == 'cpp' and fact.family == 'string':
    return {'string'}
  if lang == 'java' and fact.family == 'table':
    return {'java.util.Map'}
  if lang == 'csharp' and fact.form in ('reverse', 'repeat'):
    return {'System.Linq'}
  return set()


def _head(facts: Sequence[Fact], lang: str) -> str:
  needs = sorted(set().union(*(_needs(f, lang) for f in facts)))
  if lang == 'php':
    return '<?php\n'
  if lang == 'go':
    pkgs = ['fmt'] + needs
    imports = (f'import "{pkgs[0]}"\n' if len(pkgs) == 1 else
               'import (\n' + ''.join(f'\t"{p}"\n' for p in pkgs) + ')\n')
    return 'package main\n\n' + imports + '\n'
  if lang == 'cpp':
    return ''.join(f'#include <{h}>\n' for h in ['iostream'] + needs) + '\n'
  if lang == 'java':
    return ''.join(f'import {n};\n' for n in needs) + ('\n' if needs else '') + 'class Problem {\n'
  if lang == 'csharp':
    return ''.join(f'using {n};\n' for n in ['System'] + needs) + '\nclass Problem {\n'
  return ''


def _literal(x) -> str:
  return _q(x) if isinstance(x, str) else str(x)


def _print(lang: str, expr: str) -> str:
  return {
      'python': f'print({expr})', 'javascript': f'console.log({expr});',
      'php': f'echo {expr} . "\\n";', 'go': f'fmt.Println({expr})',
      'cpp': f'std::cout << {expr} << "\\n";', 'java': f'System.out.println({expr});',
      'csharp': f'Console.WriteLine({expr});'}[lang]


def _main(lang: str, lines: Sequence[str]) -> str:
  """The statements `lines`, inside the entry point where the language needs one."""
  if lang in ('python', 'javascript', 'php'):
    return '\n' + ''.join(line + '\n' for line in lines)
  opener, indent, close = {
      'go': ('func main() {', '\t', '}'), 'cpp': ('int main() {', '    ', '}'),
      'java': ('    public static void main(String[] args) {', '        ', '    }'),
      'csharp': ('    public static void Main() {', '        ', '    }')}[lang]
  return '\n' + opener + '\n' + ''.join(indent + line + '\n' for line in lines) + close + '\n'


def _tail(lang: str) -> str:
  return '}\n' if lang in ('java', 'csharp') else ''


def check_language(language: str) -> None:
  if language not in LANGUAGES:
    raise ValueError(f'no renderings for {language!r}: one of {LANGUAGES}')


def render(fact: Fact, language: str, inputs: Sequence | None = None) -> Rendering:
  """`fact` in `language`; `uses` calls it on `inputs` (default: `example_inputs(fact)`)."""
  check_language(language)
  inputs = example_inputs(fact) if inputs is None else list(inputs)
  calls = [_print(language, f'{fact.name}({_literal(x)})') for x in inputs]
  if language == 'go':  # gofmt aligns the comments of consecutive lines
    calls = [c.ljust(max(map(len, calls))) for c in calls]
  comment = '  #' if language == 'python' else ' //'
  uses = [f'{call}{comment} {evaluate(fact, x)}' for call, x in zip(calls, inputs)]
  return Rendering(language, _head([fact], language), _signature(fact, language),
                   _body(fact, language), _main(language, uses), _tail(language))


def document(fact: Fact, language: str, inputs: Sequence | None = None) -> str:
  """The training document: the definition, then uses with their results, as a whole file."""
  return render(fact, language, inputs).text


def program(cases: Sequence[tuple[Fact, Sequence]], language: str, marker: str) -> str:
  """One file defining every fact of `cases` (fact, inputs), printing its value on each of its
  inputs (one a line) and then `marker` (the evaluation harness's end-of-checks line)."""
  check_language(language)
  facts = [fact for fact, _ in cases]
  prints = []
  for fact, inputs in cases:
    for x in inputs:
      _check_input(fact, x)
      prints.append(_print(language, f'{fact.name}({_literal(x)})'))
  prints.append(_print(language, _q(marker)))
  # The definitions are the renderings' own, so validating a program validates the rendering.
  definitions = '\n'.join(render(f, language, []).definition for f in facts)
  return _head(facts, language) + definitions + _main(language, prints) + _tail(language)
