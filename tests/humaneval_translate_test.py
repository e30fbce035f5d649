"""HumanEval translation: generated data is reproducible and complete, literals render exactly, and
hand-written solutions pass (correct) or fail (wrong) when compiled and run."""

from tests import testing  # noqa: F401  (first: fake devices)

import concurrent.futures
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

from babel_jax.evaluation import translate
from babel_jax.evaluation import translate_types as tt
from babel_jax.evaluation import validate
from babel_jax.evaluation.execution import run_program
from babel_jax.evaluation.harness import CHECKS_DONE
from babel_jax.evaluation.humaneval import Untranslatable
from babel_jax.evaluation.languages import LANGUAGES, program, truncate

STATIC = ('go', 'cpp', 'csharp', 'java')
# An optional result, a tuple result and a dict result.
SOLVED = ('HumanEval/12', 'HumanEval/8', 'HumanEval/111')

_DICT = tt.Type('dict', (tt.STR, tt.INT))
_VALUES = {  # name: (value, type)
    'nested': ([[1, 2], []], tt.list_of(tt.list_of(tt.INT))),
    'dict': ({'a': 1, 'b"': -2}, _DICT),
    'empty_dict': ({}, _DICT),
    'string': ('q"\n\\\'$\t', tt.STR),
    'floats': ([0.1, 3, -2.5, 1e-07], tt.list_of(tt.FLOAT)),
    'bools': ([True, False], tt.list_of(tt.BOOL)),
    'optionals': ([None, 'a'], tt.list_of(tt.optional(tt.STR))),
    'pair': ((1, 'x'), tt.Type('tuple', (tt.INT, tt.STR))),
}
_EXPECTED = {
    'php': {
        'nested': '[[1, 2], []]',
        'dict': '["a" => 1, "b\\"" => -2]',
        'empty_dict': '[]',
        'string': '"q\\"\\n\\\\\'\\$\\t"',
        'floats': '[0.1, 3, -2.5, 1e-07]',
        'bools': '[true, false]',
        'optionals': '[null, "a"]',
        'pair': '[1, "x"]',
    },
    'javascript': {
        'nested': '[[1, 2], []]',
        'dict': '{"a": 1, "b\\"": -2}',
        'empty_dict': '{}',
        'string': '"q\\"\\n\\\\\'$\\t"',
        'floats': '[0.1, 3, -2.5, 1e-07]',
        'bools': '[true, false]',
        'optionals': '[undefined, "a"]',
        'pair': '[1, "x"]',
    },
    'go': {
        'nested': '[][]int{[]int{1, 2}, []int{}}',
        'dict': 'map[string]int{"a": 1, "b\\"": -2}',
        'empty_dict': 'map[string]int{}',
        'string': '"q\\"\\n\\\\\'$\\t"',
        'floats': '[]float64{0.1, 3.0, -2.5, 1e-07}',
        'bools': '[]bool{true, false}',
        'optionals': '[]*string{nil, babelPtr[string]("a")}',
        'pair': Untranslatable,  # Go arrays stand in for tuples, so elements share a type
    },
    'cpp': {
        'nested': ('std::vector<std::vector<long>>({std::vector<long>({1, 2}), '
                   'std::vector<long>()})'),
        'dict': ('std::map<std::string, long>({{std::string("a"), 1}, '
                 '{std::string("b\\""), -2}})'),
        'empty_dict': 'std::map<std::string, long>()',
        'string': 'std::string("q\\"\\n\\\\\'$\\t")',
        'floats': 'std::vector<double>({0.1, 3.0, -2.5, 1e-07})',
        'bools': 'std::vector<bool>({true, false})',
        'optionals': ('std::vector<std::optional<std::string>>({std::optional<std::string>(), '
                      'std::optional<std::string>(std::string("a"))})'),
        'pair': 'std::tuple<long, std::string>(1, std::string("x"))',
    },
    'csharp': {
        'nested': 'new List<List<long>>{new List<long>{1L, 2L}, new List<long>()}',
        'dict': 'new Dictionary<string, long>{{"a", 1L}, {"b\\"", -2L}}',
        'empty_dict': 'new Dictionary<string, long>()',
        'string': '"q\\"\\n\\\\\'$\\t"',
        'floats': 'new List<double>{0.1, 3.0, -2.5, 1e-07}',
        'bools': 'new List<bool>{true, false}',
        'optionals': 'new List<string>{null, "a"}',
        'pair': 'new Tuple<long, string>(1L, "x")',
    },
    'java': {
        'nested': ('new ArrayList<ArrayList<Long>>(Arrays.asList(new ArrayList<Long>('
                   'Arrays.asList(1L, 2L)), new ArrayList<Long>()))'),
        'dict': 'new HashMap<String, Long>(Map.of("a", 1L, "b\\"", -2L))',
        'empty_dict': 'new HashMap<String, Long>()',
        'string': '"q\\"\\n\\\\\'$\\t"',
        'floats': 'new ArrayList<Double>(Arrays.asList(0.1, 3.0, -2.5, 1e-07))',
        'bools': 'new ArrayList<Boolean>(Arrays.asList(true, false))',
        'optionals': ('new ArrayList<Optional<String>>(Arrays.asList(Optional.<String>empty(), '
                      'Optional.of("a")))'),
        'pair': 'new Pair<Long, String>(1L, "x")',
    },
}


class GeneratedDataTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.records = translate.translate_all()

  def test_data_files_are_what_the_generator_writes(self):
    with tempfile.TemporaryDirectory() as tmp:
      translate.write(self.records, tmp)
      for lang in translate.LANGUAGE_ORDER:
        with open(translate.data_path(tmp, lang), 'rb') as fresh, \
            open(translate.data_path(translate.DATA_DIR, lang), 'rb') as stored:
          self.assertEqual(fresh.read(), stored.read(),
                           f'{lang}: rerun python -m babel_jax.evaluation.translate')

  def test_generation_is_deterministic(self):
    self.assertEqual(translate.translate_all(['go', 'php']),
                     {lang: self.records[lang] for lang in ('go', 'php')})

  def test_at_least_150_of_164_translated_per_language(self):
    for lang, rows in self.records.items():
      self.assertLen(rows, 164)
      self.assertGreaterEqual(sum(r['translated'] for r in rows), 150, lang)
    self.assertTrue(all(r['translated'] for r in self.records['python']))

  def test_records_are_complete(self):
    for lang, rows in self.records.items():
      for r in rows:
        self.assertEqual(r['language'], lang)
        if not r['translated']:
          self.assertEqual(set(r), {'task_id', 'language', 'translated', 'reason'})
          self.assertTrue(r['reason'].strip(), r['task_id'])
          continue
        self.assertEqual(list(r), ['task_id', 'language', 'prompt', 'tests', 'stop',
                                   'entry_point', 'translated'])
        self.assertEqual(r['stop'], list(LANGUAGES[lang].stop))
        # The tests print the placeholder once, after their last check.
        self.assertEqual(r['tests'].count(CHECKS_DONE), 1, (lang, r['task_id']))
        self.assertLess(r['tests'].rfind(r['entry_point'] + '('), r['tests'].find(CHECKS_DONE))
        if lang != 'python':
          self.assertTrue(r['prompt'].endswith('{\n'), (lang, r['task_id']))
          self.assertTrue(r['tests'].startswith(r['stop'][0]), (lang, r['task_id']))
          self.assertIn(r['entry_point'] + '(', r['prompt'].splitlines()[-1])

  def test_statically_typed_languages_miss_only_mixed_type_problems(self):
    for lang in STATIC:
      reasons = [r['reason'] for r in self.records[lang] if not r['translated']]
      self.assertLessEqual(len(reasons), 9, lang)
      for reason in reasons:
        self.assertRegex(reason, 'helper functions|different types|mixed|Any', lang)

  def test_program_cuts_the_completion_at_a_stop_sequence(self):
    record = next(r for r in self.records['cpp'] if r['task_id'] == 'HumanEval/53')
    source = program(record, '    return x + y;\n}\n\nint main() { return 1; }\n')
    self.assertEqual(source, record['prompt'] + '    return x + y;' + record['tests'])
    self.assertEqual(truncate('a\n    }\nb', ['\n}', '\n    }']), 'a')
    with self.assertRaises(ValueError):
      program({'task_id': 'HumanEval/32', 'language': 'go', 'translated': False}, '')


class LiteralsTest(parameterized.TestCase):

  @parameterized.parameters(*_EXPECTED)
  def test_tricky_values_render_exactly(self, lang):
    literals = translate.TARGETS[lang].literals
    for name, expected in _EXPECTED[lang].items():
      value, t = _VALUES[name]
      if expected is Untranslatable:
        with self.assertRaises(Untranslatable, msg=name):
          literals.literal(value, t)
      else:
        self.assertEqual(literals.literal(value, t), expected, f'{lang} {name}')

  def test_type_inference(self):
    self.assertEqual(tt.unify(tt.INT, tt.FLOAT), tt.FLOAT)
    self.assertEqual(tt.unify(tt.NONE, tt.STR), tt.optional(tt.STR))
    self.assertEqual(tt.type_of([[], [1]]), tt.list_of(tt.list_of(tt.INT)))
    self.assertEqual(tt.unify(tt.type_of(('a', 'b')), tt.type_of(('c',))),
                     tt.Type('vtuple', (tt.STR,)))
    with self.assertRaises(Untranslatable):
      tt.type_of([1, 'a'])
    with self.assertRaises(Untranslatable):
      tt.check_static(tt.list_of(tt.UNKNOWN))

  def test_int_float_dependent_cases_are_dropped(self):
    problem = next(p for p in translate.humaneval.load_problems() if p['task_id'] == 'HumanEval/92')
    analysis = translate.analyze(problem)
    self.assertNotIn(((3.0, 4, 7), False), analysis.cases)
    self.assertIn(((3, 4, 7), True), analysis.cases)
    self.assertEqual(analysis.param_types, (tt.FLOAT,) * 3)


class SolutionsTest(parameterized.TestCase):
  """Hand-written bodies: correct ones pass, wrong ones fail, for 3 problems per language."""

  @parameterized.parameters(*translate.LANGUAGE_ORDER)
  def test_correct_pass_and_wrong_fail(self, lang):
    missing = LANGUAGES[lang].missing_tools()
    if missing:
      self.skipTest(f'{lang} toolchain not installed (missing: {", ".join(missing)})')
    records = validate.records_by_task(lang)
    entries = [e for e in validate.solutions(lang) if e[0] in SOLVED]
    self.assertLen(entries, 2 * len(SOLVED))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
      results = list(pool.map(lambda e: validate.check_solution(records[e[0]], e[1], e[2], 60.0),
                              entries))
    for (task, kind, _), (ok, outcome, tail) in zip(entries, results):
      self.assertTrue(ok, f'{lang} {task} {kind}: {outcome}\n{tail}')

  def test_outcomes(self):
    if LANGUAGES['python'].missing_tools():
      self.skipTest('python3 not on PATH')
    record = next(r for r in translate.load('python') if r['task_id'] == 'HumanEval/53')
    for body, outcome in (('    return x + y\n', 'passed'),
                          ('    return x - y\n', 'failed'),
                          ('    return (\n', 'compile_error'),
                          ('    return {}[1]\n', 'runtime_error'),
                          ('    while True: pass\n', 'timeout')):
      self.assertEqual(run_program('python', program(record, body), timeout_s=2)[0], outcome, body)


if __name__ == '__main__':
  absltest.main()
