"""Planted facts: the seeded generator, its twins, the renderings, and their runs in the sandbox."""

from tests import testing  # noqa: F401  (first: fake devices)

import builtins
import dataclasses
import json
import keyword
import os
import re
import subprocess
import time
from unittest import mock

from absl.testing import absltest

from babel_jax.data import facts
from babel_jax.evaluation import execution
from babel_jax.evaluation import facts_check
from babel_jax.evaluation import languages as eval_languages
from babel_jax.evaluation.harness import CHECKS_DONE

AFFINE = facts.Fact('zorbifa', 'fold', 'affine', (('a', 3), ('b', 5), ('m', 11)), True)
WRAP = facts.Fact('kelomi', 'string', 'wrap', (('prefix', 'ka'), ('suffix', 'lum')), True)
TABLE = facts.Fact('bodatu', 'table', 'keys3',
                   (('keys', (1, 4, 7)), ('values', (10, 40, 70)), ('default', 3)), False)


def _one_per_form(fact_set):
  """The first taught fact of every form, and their twins."""
  first = {}
  for fact in fact_set.taught:
    first.setdefault(fact.form, fact)
  return list(first.values()) + [fact_set.twin(f) for f in first.values()]


def _require_toolchains(test, languages=facts.LANGUAGES):
  for name in languages:
    missing = eval_languages.LANGUAGES[name].missing_tools()
    test.assertEqual(missing, [], f'{name} toolchain missing ({" ".join(missing)}): '
                     'launch/setup.sh installs it; these tests need every one')


class GenerateTest(absltest.TestCase):

  def test_deterministic_for_a_seed_and_different_for_another(self):
    a, b, other = facts.generate(9, 5), facts.generate(9, 5), facts.generate(9, 6)
    self.assertEqual(a, b)
    self.assertNotEqual([f.name for f in a.facts], [f.name for f in other.facts])
    self.assertNotEqual([f.params for f in a.facts], [f.params for f in other.facts])
    # Fact i has a stream of its own: a smaller set is a prefix of a larger one.
    small = facts.generate(4, 5)
    self.assertEqual((small.taught, small.untaught), (a.taught[:4], a.untaught[:4]))
    self.assertEqual(facts.generate(0, 5).facts, ())

  def test_families_take_turns_and_all_forms_occur(self):
    fs = facts.generate(30, 0)
    self.assertEqual([f.family for f in fs.taught[:6]], list(facts.FAMILIES) * 2)
    self.assertEqual({f.form for f in fs.taught},
                     {form for forms in facts.FORMS.values() for form in forms})
    self.assertTrue(all(f.taught for f in fs.taught))
    self.assertFalse(any(f.taught for f in fs.untaught))

  def test_twins_share_family_and_form_not_names_or_constants(self):
    fs = facts.generate(30, 1)
    for taught, twin in zip(fs.taught, fs.untaught):
      self.assertEqual((taught.family, taught.form), (twin.family, twin.form))
      self.assertEqual([k for k, _ in taught.params], [k for k, _ in twin.params])
      self.assertNotEqual(taught.name, twin.name)
      for (key, value), (_, other) in zip(taught.params, twin.params):
        self.assertNotEqual(value, other, f'{taught.name}/{twin.name} share {key}')
      self.assertIs(fs.twin(taught), twin)
      self.assertIs(fs.twin(twin), taught)
      # Different behaviours: knowing one does not answer the other.
      inputs = facts.sample_inputs(taught, 20, seed=3)
      self.assertNotEqual([facts.evaluate(taught, x) for x in inputs],
                          [facts.evaluate(twin, x) for x in inputs], taught.name)

  def test_names(self):
    names = [f.name for seed in range(5) for f in facts.generate(40, seed).facts]
    for seed in range(5):
      fs = facts.generate(40, seed)
      self.assertLen({f.name for f in fs.facts}, 80)  # unique across both halves
    python_reserved = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
    for name in names:
      self.assertRegex(name, r'^[a-z]+$')
      self.assertTrue(name.isidentifier(), name)
      self.assertTrue(facts.NAME_PATTERN.fullmatch(name), name)
      self.assertNotIn(name, python_reserved)
      self.assertNotIn(name, facts.RESERVED)
    syllables = [len(re.findall(f'[{facts._VOWELS}]', n)) for n in names]
    self.assertEqual(set(syllables), {2, 3})
    for word in ('def', 'function', 'class', 'func', 'echo', 'case', 'string', 'main', 'time',
                 'date', 'range', 'delete', 'make', 'base', 'value', 'define', 'rename'):
      self.assertFalse(facts.is_valid_name(word), word)
    with self.assertRaisesRegex(ValueError, 'no valid fact name'):
      facts.Fact('range', 'fold', 'xor', (('a', 1), ('b', 2)), True)
    with self.assertRaisesRegex(ValueError, 'has constants'):
      facts.Fact('dolu', 'fold', 'xor', (('a', 1),), True)
    with self.assertRaisesRegex(ValueError, 'unknown family'):
      facts.Fact('dolu', 'fold', 'wrap', (('prefix', 'a'), ('suffix', 'b')), True)

  def test_no_name_the_grammar_allows_is_predeclared_by_a_toolchain(self):
    """Exhaustive: every PHP function and node global the name grammar could produce is
    reserved (PHP forbids redeclaring a function; the rest are keyword lists in facts.py)."""
    _require_toolchains(self, ('php', 'javascript'))
    # php segfaults under launch/cpu_env.sh's LD_PRELOAD of tcmalloc (the sandbox drops it).
    env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
    php = subprocess.run(['php', '-r', 'echo implode("\\n", get_defined_functions()["internal"]);'],
                         capture_output=True, text=True, check=True, env=env).stdout.split()
    node = subprocess.run(['node', '-e', 'let s = new Set(), o = globalThis; while (o) { '
                           'Object.getOwnPropertyNames(o).forEach(n => s.add(n)); '
                           'o = Object.getPrototypeOf(o); } console.log([...s].join("\\n"))'],
                          capture_output=True, text=True, check=True, env=env).stdout.split()
    self.assertGreater(len(php), 500)
    self.assertGreater(len(node), 50)
    python = keyword.kwlist + keyword.softkwlist + dir(builtins)
    for source, names in (('php', php), ('node', node), ('python', python)):
      clash = sorted({n.lower() for n in names if facts.NAME_PATTERN.fullmatch(n.lower())}
                     - facts.RESERVED)
      self.assertEqual(clash, [], f'{source} predeclares these; add them to facts._KEYWORDS')

  def test_json_round_trip(self):
    fs = facts.generate(7, 3)
    record = json.loads(json.dumps(fs.to_json()))
    self.assertEqual((record['seed'], record['count']), (3, 7))
    self.assertEqual(facts.FactSet.from_json(record), fs)
    self.assertEqual(facts.FactSet.from_json(json.dumps(record)), fs)
    self.assertEqual(fs.by_name(fs.untaught[2].name), fs.untaught[2])

  def test_evaluate(self):
    self.assertEqual([facts.evaluate(AFFINE, x) for x in (0, 2, 7)], [5, 0, 4])
    self.assertEqual(facts.evaluate(WRAP, 'abc'), 'kaabclum')
    self.assertEqual([facts.evaluate(TABLE, x) for x in (1, 4, 7, 0, 19)], [10, 40, 70, 3, 3])
    shift = facts.Fact('dolu', 'fold', 'shift', (('a', 4), ('m', 9), ('b', 2)), True)
    self.assertEqual(facts.evaluate(shift, 10), 10)  # (10 + 4) % 9 * 2
    xor = facts.Fact('dola', 'fold', 'xor', (('a', 5), ('b', 1)), True)
    self.assertEqual(facts.evaluate(xor, 3), 7)  # (3 ^ 5) + 1
    rev = facts.Fact('dole', 'string', 'reverse', (('affix', 'zu'),), True)
    self.assertEqual(facts.evaluate(rev, 'abc'), 'cbazu')
    rep = facts.Fact('doli', 'string', 'repeat', (('times', 3), ('affix', 'zu'),), True)
    self.assertEqual(facts.evaluate(rep, 'ab'), 'abababzu')
    for bad_fact, bad in ((AFFINE, -1), (AFFINE, '3'), (AFFINE, True), (WRAP, 'a"b'), (WRAP, 3),
                          (AFFINE, facts.MAX_INT_INPUT)):
      with self.assertRaises(ValueError):
        facts.evaluate(bad_fact, bad)

  def test_sample_inputs(self):
    self.assertEqual(facts.sample_inputs(TABLE, 8, 1), facts.sample_inputs(TABLE, 8, 1))
    self.assertNotEqual(facts.sample_inputs(AFFINE, 8, 1), facts.sample_inputs(AFFINE, 8, 2))
    table_inputs = facts.sample_inputs(TABLE, 40, 0)
    self.assertTrue(set(table_inputs) & {1, 4, 7})  # hits ...
    self.assertTrue(set(table_inputs) - {1, 4, 7})  # ... and misses
    for fact in facts.generate(9, 0).facts:
      for x in facts.sample_inputs(fact, 10):
        facts.evaluate(fact, x)  # in the domain


class RenderTest(absltest.TestCase):

  def test_python_and_javascript_documents(self):
    self.assertEqual(facts.document(AFFINE, 'python', [2, 7]),
                     'def zorbifa(x):\n'
                     '    return (x * 3 + 5) % 11\n'
                     '\n'
                     'print(zorbifa(2))  # 0\n'
                     'print(zorbifa(7))  # 4\n')
    r = facts.render(TABLE, 'javascript', [4])
    self.assertEqual(r.signature, 'function bodatu(x) {\n')
    self.assertEqual(r.body, '    return {1: 10, 4: 40, 7: 70}[x] ?? 3;\n}\n')
    self.assertEqual(r.uses, '\nconsole.log(bodatu(4)); // 40\n')

  def test_every_rendering_is_well_formed(self):
    fs = facts.generate(12, 2)
    for fact in list(fs.facts) + [AFFINE, WRAP, TABLE]:
      for lang in facts.LANGUAGES:
        where = f'{fact.name} in {lang}'
        r = facts.render(fact, lang)
        self.assertEqual(facts.document(fact, lang), r.head + r.definition + r.uses + r.tail)
        self.assertEqual(r.text, facts.document(fact, lang))
        self.assertIn(f' {fact.name}(', r.signature, where)
        self.assertTrue(r.signature.endswith(':\n' if lang == 'python' else '{\n'), where)
        self.assertLessEqual(r.definition.count('\n'), 10, where)  # a few lines
        self.assertLessEqual(len(r.definition), 300, where)
        for x in facts.example_inputs(fact):
          self.assertIn(f'{fact.name}({facts._literal(x)})', r.uses, where)
          self.assertRegex(r.uses, re.escape(f' {facts.evaluate(fact, x)}') + '\n', where)
        # The evaluation's stop sequences end a generated body exactly where this one ends.
        stop = eval_languages.LANGUAGES[lang].stop
        cut = eval_languages.truncate(r.body + r.uses + r.tail, stop)
        closing = {'python': '', 'java': '\n    }\n', 'csharp': '\n    }\n'}.get(lang, '\n}\n')
        self.assertEqual(cut + closing, r.body, where)

  def test_languages_are_the_evaluation_languages(self):
    self.assertEqual(set(facts.LANGUAGES), set(eval_languages.LANGUAGES))
    with self.assertRaisesRegex(ValueError, 'no renderings'):
      facts.render(AFFINE, 'rust')

  def test_program(self):
    source = facts.program([(WRAP, ['ab', ''])], 'go', CHECKS_DONE)
    self.assertEqual(source.count(CHECKS_DONE), 1)
    self.assertTrue(source.rstrip().endswith(f'fmt.Println("{CHECKS_DONE}")\n}}'))
    self.assertIn(facts.render(WRAP, 'go').definition, source)
    with self.assertRaises(ValueError):
      facts.program([(WRAP, ['a b'])], 'go', CHECKS_DONE)


class SandboxTest(absltest.TestCase):

  def test_program_prints_the_python_values(self):
    _require_toolchains(self, ('cpp',))
    inputs = [0, 2, 7, 99]
    outcome, out = execution.run_program('cpp',
                                         facts.program([(AFFINE, inputs)], 'cpp', CHECKS_DONE))
    self.assertEqual(outcome, 'passed', out)
    self.assertEqual(out.split(CHECKS_DONE)[0].split(),
                     [str(facts.evaluate(AFFINE, x)) for x in inputs])

  def test_every_rendering_agrees_with_python_in_every_language(self):
    _require_toolchains(self)
    fs = facts.generate(24, 11)
    chosen = _one_per_form(fs)
    self.assertLen(chosen, 18)  # every form, taught and twin
    start = time.time()
    problems = facts_check.validate(chosen + [AFFINE, WRAP, TABLE], facts.LANGUAGES)
    self.assertEqual(problems, [], '\n'.join(problems))
    print(f'validated {len(chosen) + 3} facts x {len(facts.LANGUAGES)} languages in '
          f'{time.time() - start:.1f}s')

  def test_a_wrong_rendering_is_reported(self):
    _require_toolchains(self, ('javascript', 'go'))
    real = facts.render

    def corrupt(fact, language, inputs=None):
      r = real(fact, language, inputs)
      if fact == AFFINE and language == 'javascript':  # a wrong value
        r = dataclasses.replace(r, body=r.body.replace('* 3', '* 4'))
      if fact == WRAP and language == 'go':  # no longer compiles
        r = dataclasses.replace(r, body=r.body.replace('return', 'retrun'))
      return r

    with mock.patch.object(facts, 'render', corrupt):
      problems = facts_check.validate([AFFINE, WRAP, TABLE], ['javascript', 'go'])
    self.assertLen(problems, 2, '\n'.join(problems))
    self.assertRegex(problems[0], r'^javascript zorbifa \(fold/affine\): \d of 5 inputs disagree')
    self.assertRegex(problems[1], r'^go kelomi: compile_error')
    self.assertEqual(facts_check.validate([AFFINE, WRAP, TABLE], ['javascript', 'go']), [])


if __name__ == '__main__':
  absltest.main()
