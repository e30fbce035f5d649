"""MultiPL-E-style translation of HumanEval into PHP, JavaScript, Go, C++, C# and Java.

For each problem the Python signature and docstring become a prompt in the target language (the
docstring as comments, its `>>>` examples rewritten in the language's syntax, then the function
signature up to its opening brace), and the calls `check(candidate)` makes become typed literal
checks run by a `main`. Types come from the type hints and from the test values (see
translate_types). A problem a language cannot express is recorded with its reason instead.

  python -m babel_jax.evaluation.translate --out babel_jax/evaluation/data
"""

from __future__ import annotations

import argparse
import ast
import collections
import copy
import dataclasses
import json
import os

from babel_jax.evaluation import harness
from babel_jax.evaluation import humaneval
from babel_jax.evaluation import translate_types as tt
from babel_jax.evaluation.humaneval import Untranslatable
from babel_jax.evaluation.languages import LANGUAGES

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
LANGUAGE_ORDER = ('python', 'php', 'javascript', 'go', 'cpp', 'csharp', 'java')
MAX_DROPPED_FRACTION = 0.25  # of a problem's test cases, else the problem is not translated


@dataclasses.dataclass(frozen=True)
class Analysis:
  """What every language's translation of one problem starts from."""
  signature: humaneval.Signature
  param_types: tuple[tt.Type, ...]
  return_type: tt.Type
  cases: list[tuple[tuple, object]]  # (arguments, expected result)
  type_problem: str | None  # why a statically typed language cannot type the function


def analyze(problem: dict) -> Analysis:
  """Signature, inferred types and recorded test cases; raises Untranslatable for every language.

  When a few cases pass an argument of another type than the rest (HumanEval/78 passes `[]` for a
  string), those cases are dropped for every language so the others can be typed.
  """
  signature = humaneval.parse_signature(problem)
  if signature.helpers:
    raise Untranslatable(f'the prompt defines helper functions ({", ".join(signature.helpers)}) '
                         'that would need translating too')
  all_cases = humaneval.record_test_cases(problem)
  cases, type_problem = all_cases, None
  try:
    params, returns = _infer_types(signature, cases)
  except Untranslatable as e:
    try:
      cases = _same_typed_cases(signature, all_cases)
      if cases is None:
        raise e
      params, returns = _infer_types(signature, cases)
    except Untranslatable:
      cases, type_problem = all_cases, str(e)
      params, returns = (tt.ANY,) * len(signature.params), tt.ANY
  # any_int(3.0, 4, 7) == False but any_int(3, 4, 7) == True: a case whose result depends on an
  # integral value being a float, which a `double` parameter or a JavaScript number cannot show,
  # is left out.
  solution = humaneval.canonical_solution(problem)
  cases = [(args, result) for args, result in cases
           if _same_result(solution, [tt.as_javascript(v) for v in args], result)]
  if len(all_cases) - len(cases) > MAX_DROPPED_FRACTION * len(all_cases):
    raise Untranslatable('too many test cases depend on the difference between ints and floats')
  return Analysis(signature, params, returns, cases, type_problem)


def _same_result(solution, args, expected) -> bool:
  try:
    return tt.close(solution(*copy.deepcopy(args)), expected)
  except Exception:  # pylint: disable=broad-except
    return False


def _infer_types(signature: humaneval.Signature, cases) -> tuple[tuple[tt.Type, ...], tt.Type]:
  """Parameter and return types from the hints and the cases' values, or Untranslatable."""

  def infer(hint, values, what):
    try:
      t = tt.unify_all([tt.parse_hint(hint)] + [tt.type_of(v) for v in values])
      tt.check_static(t)
      return t
    except Untranslatable as e:
      raise Untranslatable(f'{what}: {e}') from None

  params = tuple(infer(hint, [args[i] for args, _ in cases], f'parameter `{name}`')
                 for i, (name, hint) in enumerate(zip(signature.params, signature.annotations)))
  return params, infer(signature.returns, [result for _, result in cases], 'return value')


def _same_typed_cases(signature: humaneval.Signature, cases):
  """The cases whose arguments share types, most common typing first; None if that drops more
  than MAX_DROPPED_FRACTION of them."""
  typings = []
  for args, _ in cases:
    try:
      typings.append(tuple(map(tt.type_of, args)))
    except Untranslatable:
      typings.append(None)
  counts = collections.Counter(t for t in typings if t is not None)
  order = sorted(range(len(cases)), key=lambda i: (-counts.get(typings[i], 0), i))
  types, kept = [tt.parse_hint(h) for h in signature.annotations], []
  for i in order:
    try:
      if typings[i] is None:
        continue
      types = [tt.unify(a, b) for a, b in zip(types, typings[i])]
      kept.append(i)
    except Untranslatable:
      pass
  if len(cases) - len(kept) > MAX_DROPPED_FRACTION * len(cases):
    return None
  return [cases[i] for i in sorted(kept)]


def pascal_case(name: str) -> str:
  return ''.join(part[:1].upper() + part[1:] for part in name.split('_') if part)


def camel_case(name: str) -> str:
  pascal = pascal_case(name)
  return pascal[:1].lower() + pascal[1:]


class Target:
  """One language's prompt and test rendering. Subclasses fill in the syntax."""

  name = ''
  literals: tt.Literals
  reserved: frozenset[str] = frozenset()  # parameter names that must be renamed
  member_indent = ''  # indentation of the function (inside a class for C# and Java)

  def function_name(self, name: str) -> str:
    return name

  def param_name(self, name: str) -> str:
    return name + '_' if name in self.reserved else name

  def header(self, a: Analysis) -> str:
    return ''

  def signature(self, a: Analysis) -> str:
    raise NotImplementedError

  def tests(self, a: Analysis) -> str:
    raise NotImplementedError

  def comment(self, line: str) -> str:
    return (self.member_indent + '// ' + line).rstrip()

  def call(self, a: Analysis, args) -> str:
    rendered = [self.literals.literal(v, t) for v, t in zip(args, a.param_types)]
    return f'{self.function_name(a.signature.name)}({", ".join(rendered)})'

  def checks(self, a: Analysis) -> list[tuple[int, str, str]]:
    """(index, call, expected) for every test case this language can render.

    A case whose values the language cannot hold exactly (an integer beyond 2**53 in JavaScript)
    is left out, unless that leaves out more than MAX_DROPPED_FRACTION of the cases.
    """
    rendered, failures = [], []
    for args, result in a.cases:
      try:
        rendered.append((self.call(a, args), self.literals.expected(result, a.return_type)))
      except Untranslatable as e:
        failures.append(str(e))
    if not rendered or len(failures) > MAX_DROPPED_FRACTION * len(a.cases):
      raise Untranslatable(failures[0])
    return [(index, call, expected) for index, (call, expected) in enumerate(rendered, 1)]

  def translate(self, problem: dict, a: Analysis) -> dict:
    if self.literals.static and a.type_problem:
      raise Untranslatable(a.type_problem)
    prompt = (self.header(a) + '\n'.join(map(self.comment, self.docstring(a))) + '\n'
              + self.signature(a) + '\n')
    return {'task_id': problem['task_id'], 'language': self.name, 'prompt': prompt,
            'tests': self.tests(a), 'stop': list(LANGUAGES[self.name].stop),
            'entry_point': self.function_name(a.signature.name), 'translated': True}

  def default_body(self, a: Analysis) -> str:
    """A completion that only returns a default value of the return type (checks the harness)."""
    value = self.literals.literal(tt.default_value(a.return_type), a.return_type)
    return f'{self.member_indent}    return {value};\n'

  def docstring(self, a: Analysis) -> list[str]:
    """The docstring's lines, with `>>> f(...)` examples and their outputs in this language."""
    lines = a.signature.docstring.split('\n')
    out = []
    for i, line in enumerate(lines):
      previous = lines[i - 1].lstrip() if i else ''
      if line.lstrip().startswith('>>>'):
        indent, source = line[:len(line) - len(line.lstrip())], line.lstrip()[3:]
        call = self._doctest_call(a, source)
        out.append(f'{indent}>>> {call}' if call else line)
      elif previous.startswith('>>>') and line.strip() and self._doctest_call(a, previous[3:]):
        try:
          value = ast.literal_eval(line.strip())
          out.append(line[:len(line) - len(line.lstrip())]
                     + self.literals.doc_literal(value, a.return_type))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, Untranslatable):
          out.append(line)
      else:
        out.append(line)
    return out

  def _doctest_call(self, a: Analysis, source: str) -> str | None:
    try:
      node = ast.parse(source.strip(), mode='eval').body
      if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
          and node.func.id == a.signature.name and len(node.args) == len(a.param_types)):
        return self.call(a, [ast.literal_eval(arg) for arg in node.args])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, Untranslatable):
      pass
    return None

  def params(self, a: Analysis, typed) -> str:
    return ', '.join(typed(self.param_name(name), t)
                     for name, t in zip(a.signature.params, a.param_types))


class PythonTarget(Target):
  """The problem as given; HumanEval's own harness: prompt + completion + test + check(f)."""
  name = 'python'

  def translate(self, problem, a=None):
    return {'task_id': problem['task_id'], 'language': 'python', 'prompt': problem['prompt'],
            'tests': (f'\n{problem["test"]}\ncheck({problem["entry_point"]})\n'
                      f'print("{harness.CHECKS_DONE}")\n'),
            'stop': list(LANGUAGES['python'].stop), 'entry_point': problem['entry_point'],
            'translated': True}

  def default_body(self, a=None):
    value = tt.default_value(a.return_type) if a is not None else None
    return f'    return {value!r}\n'


class PhpTarget(Target):
  name = 'php'
  literals = tt.PhpLiterals()
  reserved = frozenset({'this'})
  builtins = frozenset({'strlen'})  # entry points that would redeclare a PHP function

  def function_name(self, name):
    return name + '_' if name in self.builtins else name

  def header(self, a):
    return '<?php\n'

  def comment(self, line):
    return super().comment(line.replace('?>', '? >'))  # `?>` would leave PHP mode

  def signature(self, a):
    params = self.params(a, lambda n, t: '$' + n)
    return f'function {self.function_name(a.signature.name)}({params}) {{'

  def tests(self, a):
    lines = [f'babel_check({i}, {call}, {expected});' for i, call, expected in self.checks(a)]
    lines.append(f'echo "{harness.CHECKS_DONE}\\n";')
    return '\n}\n' + harness.PHP + '\n' + '\n'.join(lines) + '\n'


class JavaScriptTarget(Target):
  name = 'javascript'
  literals = tt.JavaScriptLiterals()
  reserved = frozenset('arguments await break case catch class const continue debugger default '
                       'delete do else enum eval export extends false finally for function if '
                       'import in instanceof let new null return static super switch this throw '
                       'true try typeof var void while with yield'.split())

  def signature(self, a):
    return f'function {self.function_name(a.signature.name)}({self.params(a, lambda n, t: n)}) {{'

  def tests(self, a):
    lines = [f'babelCheck({i}, {call}, {expected});' for i, call, expected in self.checks(a)]
    lines.append(f'console.log("{harness.CHECKS_DONE}");')
    return '\n}\n' + harness.JAVASCRIPT + '\n' + '\n'.join(lines) + '\n'


class GoTarget(Target):
  name = 'go'
  literals = tt.GoLiterals()
  reserved = frozenset('break case chan const continue default defer else fallthrough for func go '
                       'goto if import interface map package range return select struct switch '
                       'type var append bool byte cap close copy delete error false float64 int '
                       'len make max min new nil panic print println rune string true'.split()
                       + list(harness.GO_IMPORTS))  # a parameter would hide the package

  def header(self, a):
    imports = ''.join(f'\t"{name}"\n' for name in harness.GO_IMPORTS)
    return f'package main\n\nimport (\n{imports})\n\n'

  def signature(self, a):
    params = self.params(a, lambda n, t: f'{n} {self.literals.type_name(t)}')
    return f'func {a.signature.name}({params}) {self.literals.type_name(a.return_type)} {{'

  def default_body(self, a):
    return f'\treturn {self.literals.literal(tt.default_value(a.return_type), a.return_type)}\n'

  def equality(self, t: tt.Type) -> str:
    """A Go expression for a `func(a, b T) bool` comparing values of `t` by value."""
    if t == tt.FLOAT:
      return 'babelEqualFloat'
    if t.kind in ('int', 'bool', 'str'):
      return f'babelEqualPlain[{self.literals.type_name(t)}]'
    name = self.literals.type_name(t)
    body = {'list': 'babelEqualSlice(a, b, {0})', 'vtuple': 'babelEqualSlice(a, b, {0})',
            'tuple': 'babelEqualSlice(a[:], b[:], {0})', 'dict': 'babelEqualMap(a, b, {1})',
            'optional': 'babelEqualPtr(a, b, {0})'}[t.kind]
    inner = [self.equality(arg) for arg in t.args]
    return f'func(a, b {name}) bool {{ return {body.format(*inner)} }}'

  def tests(self, a):
    lines = [f'\tif actual := {call}; !equal(actual, {expected}) {{\n'
             f'\t\tbabelFail({i}, actual)\n\t}}' for i, call, expected in self.checks(a)]
    lines.append(f'\tfmt.Println("{harness.CHECKS_DONE}")')
    main = f'func main() {{\n\tequal := {self.equality(a.return_type)}\n'
    return '\n}\n\n' + harness.GO + '\n' + main + '\n'.join(lines) + '\n}\n'


class CppTarget(Target):
  name = 'cpp'
  literals = tt.CppLiterals()
  reserved = frozenset('and asm auto bitand bitor bool break case catch char class compl const '
                       'continue default delete do double else enum explicit export extern false '
                       'float for friend goto if inline int long mutable namespace new not or '
                       'operator private protected public register return short signed sizeof '
                       'static struct switch template this throw true try typedef typeid typename '
                       'union unsigned using virtual void volatile while xor'.split())

  def header(self, a):
    return '#include <bits/stdc++.h>\n'

  def signature(self, a):
    params = self.params(a, lambda n, t: f'{self.literals.type_name(t)} {n}')
    return f'{self.literals.type_name(a.return_type)} {a.signature.name}({params}) {{'

  def tests(self, a):
    lines = [f'    babel_check({i}, babel_equal({call}, {expected}));'
             for i, call, expected in self.checks(a)]
    lines.append(f'    std::cout << "{harness.CHECKS_DONE}" << std::endl;')
    return '\n}\n' + harness.CPP + '\nint main() {\n' + '\n'.join(lines) + '\n    return 0;\n}\n'


class ClassTarget(Target):
  """C# and Java: the function is a static method of `class Problem`, the checks run in main."""
  member_indent = '    '
  check_function = ''  # the harness's check helper
  harness_code = ''
  main_declaration = ''
  print_line = ''  # the statement that prints a line

  def signature(self, a):
    params = self.params(a, lambda n, t: f'{self.literals.type_name(t)} {n}')
    return (f'    public static {self.literals.type_name(a.return_type)} '
            f'{self.function_name(a.signature.name)}({params}) {{')

  def tests(self, a):
    lines = [f'        {self.check_function}({i}, {call}, {expected});'
             for i, call, expected in self.checks(a)]
    lines.append(f'        {self.print_line}("{harness.CHECKS_DONE}");')
    return (f'\n    }}\n{self.harness_code}\n    {self.main_declaration} {{\n'
            + '\n'.join(lines) + '\n    }\n}\n')


class CSharpTarget(ClassTarget):
  name = 'csharp'
  literals = tt.CSharpLiterals()
  check_function = 'BabelCheck'
  harness_code = harness.CSHARP
  main_declaration = 'public static void Main(string[] args)'
  print_line = 'Console.WriteLine'
  reserved = frozenset('abstract as base bool break byte case catch char checked class const '
                       'continue decimal default delegate do double else enum event explicit '
                       'extern false finally fixed float for foreach goto if implicit in int '
                       'interface internal is lock long namespace new null object operator out '
                       'override params private protected public readonly ref return sbyte sealed '
                       'short sizeof stackalloc static string struct switch this throw true try '
                       'typeof uint ulong unchecked unsafe ushort using virtual void volatile '
                       'while'.split())

  def function_name(self, name):
    return pascal_case(name)

  def header(self, a):
    usings = ('System', 'System.Collections.Generic', 'System.Linq', 'System.Text')
    return ''.join(f'using {u};\n' for u in usings) + '\nclass Problem {\n'


class JavaTarget(ClassTarget):
  name = 'java'
  literals = tt.JavaLiterals()
  check_function = 'babelCheck'
  harness_code = harness.JAVA
  main_declaration = 'public static void main(String[] args)'
  print_line = 'System.out.println'
  reserved = frozenset('abstract assert boolean break byte case catch char class const continue '
                       'default do double else enum extends false final finally float for goto if '
                       'implements import instanceof int interface long native new null package '
                       'private protected public return short static strictfp super switch '
                       'synchronized this throw throws transient true try void volatile '
                       'while'.split())

  def function_name(self, name):
    return camel_case(name)

  def header(self, a):
    uses_pairs = any(_has_kind(t, 'tuple') for t in a.param_types + (a.return_type,))
    pair = '    record Pair<A, B>(A first, B second) {}\n\n' if uses_pairs else ''
    return 'import java.util.*;\nimport java.util.stream.*;\n\nclass Problem {\n' + pair

  def comment(self, line):
    return super().comment(line.replace('\\u', '\\\\u'))  # javac reads \u escapes in comments


def _has_kind(t: tt.Type, kind: str) -> bool:
  return t.kind == kind or any(_has_kind(arg, kind) for arg in t.args)


TARGETS: dict[str, Target] = {t.name: t for t in (
    PythonTarget(), PhpTarget(), JavaScriptTarget(), GoTarget(), CppTarget(), CSharpTarget(),
    JavaTarget())}


def translate_all(languages=LANGUAGE_ORDER, problems=None) -> dict[str, list[dict]]:
  """language -> one record per problem, in task order."""
  problems = humaneval.load_problems() if problems is None else problems
  records: dict[str, list[dict]] = {lang: [] for lang in languages}
  for problem in problems:
    try:
      analysis, reason = analyze(problem), None
    except Untranslatable as e:
      analysis, reason = None, str(e)
    for lang in languages:
      target = TARGETS[lang]
      try:
        if lang == 'python':
          records[lang].append(target.translate(problem))
          continue
        if reason:
          raise Untranslatable(reason)
        records[lang].append(target.translate(problem, analysis))
      except Untranslatable as e:
        records[lang].append({'task_id': problem['task_id'], 'language': lang,
                              'translated': False, 'reason': str(e)})
  return records


def data_path(out_dir: str, language: str) -> str:
  return os.path.join(out_dir, f'humaneval_{language}.jsonl')


def write(records: dict[str, list[dict]], out_dir: str) -> None:
  os.makedirs(out_dir, exist_ok=True)
  for lang, rows in records.items():
    with open(data_path(out_dir, lang), 'w', encoding='utf-8', newline='\n') as f:
      for row in rows:
        f.write(json.dumps(row) + '\n')


def load(language: str, data_dir: str = DATA_DIR) -> list[dict]:
  """The generated records of one language."""
  with open(data_path(data_dir, language), encoding='utf-8') as f:
    return [json.loads(line) for line in f]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=DATA_DIR, help='directory for humaneval_<lang>.jsonl')
  parser.add_argument('--languages', nargs='+', default=list(LANGUAGE_ORDER),
                      choices=LANGUAGE_ORDER)
  args = parser.parse_args(argv)
  records = translate_all(args.languages)
  write(records, args.out)
  for lang, rows in records.items():
    print(f'{lang:>10}: {sum(r["translated"] for r in rows)}/{len(rows)} translated')


if __name__ == '__main__':
  main()
