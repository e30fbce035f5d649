"""Bad configs fail early with messages that name the field and what was expected."""

from tests import testing  # noqa: F401  (first: fake devices)

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import warnings

from absl import flags
from absl.testing import absltest
from ml_collections import config_flags

from babel_jax import config as config_lib
from babel_jax.errors import ConfigError
from babel_jax.runtime import sharding
from babel_jax.runtime.rundir import RunDir


class ConfigTest(absltest.TestCase):

  def test_shipped_configs_validate(self):
    for name in ('tiny', 'bench_small', 'bench_medium', 'demo', 'gpt2_1p3b', 'gpt2_6p7b',
                 'babel_tower', 'corpus_debian', 'gpu_study', 'calibrate', 'mixtures',
                 'pythia_series', 'codeparrot_small'):
      config_lib.validate(testing.load_config(name))

  def test_unknown_field_is_named(self):
    cfg = testing.load_config()
    cfg.model.unlock()
    cfg.model.d_modle = 3
    with self.assertRaisesRegex(ConfigError, r"unknown config field 'model\.d_modle' "
                                r"\(did you mean 'd_model'\?\)"):
      config_lib.validate(cfg)
    with self.assertRaisesRegex(ConfigError, r"unknown config field 'train\.stepz' "
                                r"\(did you mean 'steps'\?\)"):
      config_lib.replace(testing.config(), **{'train.stepz': 3})

  def test_wrong_type_is_named(self):
    cfg = testing.load_config()
    with cfg.ignore_type():
      cfg.train.steps = '100'
    with self.assertRaisesRegex(ConfigError, r"'train\.steps' must be int, got str"):
      config_lib.validate(cfg)

  def test_bad_values(self):
    cases = [('model.num_heads', 3, 'divisible'), ('train.steps', 0, 'must be > 0'),
             ('model.norm', 'batchnorm', 'expected one of'),
             ('train.grad_accum', 3, 'batch_size=8 must be divisible')]
    cfg = testing.config()
    for field, value, msg in cases:
      with self.assertRaisesRegex(ConfigError, msg):
        config_lib.replace(cfg, **{field: value})

  def test_bound_violation_names_field_and_bound(self):
    cfg = testing.config()
    cases = [('train.steps', 0, r"config field 'train\.steps' must be > 0, got 0$"),
             ('train.lr', -1.0, r"config field 'train\.lr' must be >= 0, got -1\.0$"),
             ('probe.filter_rate', 1.0,
              r"config field 'probe\.filter_rate' must be in \(0, 1\), got 1\.0$"),
             ('corpus.planted_share', 0.0, r"'corpus\.planted_share' must be in \(0, 1\]"),
             ('corpus.val_fraction', 1.0, r"'corpus\.val_fraction' must be in \[0, 1\)"),
             ('data.weights', '1,-2,1', r"'data\.weights' must be >= 0 \(each item\), got -2"),
             ('eval.k', '0', r"'eval\.k' must be >= 1 \(each item\), got 0"),
             ('model.remat', 'some', r"'model\.remat' is 'some'; expected one of "
                                     r"\('none', 'full', 'dots'\)"),
             ('experiment.controls', 'clone,twin', r"'experiment\.controls' names 'twin'")]
    for field, value, msg in cases:
      with self.assertRaisesRegex(ConfigError, msg):
        config_lib.replace(cfg, **{field: value})

  def test_wrong_type_is_one_line(self):
    cfg = testing.config()
    cases = [('train.steps', '5', "config field 'train.steps' must be int, got str '5'"),
             ('train.steps', 5.0, "config field 'train.steps' must be int, got float 5.0"),
             ('model.use_bias', 1, "config field 'model.use_bias' must be bool, got int 1"),
             ('train.lr', True, "config field 'train.lr' must be float, got bool True"),
             ('data.languages', 3, "config field 'data.languages' must be comma-separated "
                                   "names (text or a list), got int 3"),
             ('data.weights', 'a,b,c', "config field 'data.weights' must be comma-separated "
                                       "numbers, got 'a,b,c'"),
             ('eval.k', '1.5', "config field 'eval.k' must be comma-separated integers, got "
                               "'1.5'")]
    for field, value, msg in cases:
      with self.assertRaises(ConfigError) as e:
        config_lib.replace(cfg, **{field: value})
      self.assertEqual(str(e.exception), msg)
    self.assertEqual(config_lib.replace(cfg, **{'train.lr': 1}).train.lr, 1.0)  # int -> float
    self.assertIsInstance(config_lib.replace(cfg, **{'train.lr': 1}).train.lr, float)

  def test_sections_are_frozen(self):
    cfg = testing.config()
    with self.assertRaises(dataclasses.FrozenInstanceError):
      cfg.train.steps = 5  # type: ignore[misc]
    with self.assertRaises(dataclasses.FrozenInstanceError):
      cfg.train = config_lib.Train()  # type: ignore[misc]
    with self.assertRaises(dataclasses.FrozenInstanceError):
      cfg.seed = 1  # type: ignore[misc]
    self.assertIsInstance(cfg.data.languages, tuple)

  def test_replace_returns_a_new_validated_config(self):
    cfg = testing.config()
    out = config_lib.replace(cfg, seed=4, **{'train.steps': 5, 'data.languages': ['go', 'php']})
    self.assertEqual((out.seed, out.train.steps, out.data.languages), (4, 5, ('go', 'php')))
    self.assertEqual((cfg.seed, cfg.train.steps), (0, 40))  # the original is unchanged
    self.assertEqual(config_lib.replace(cfg, train={'steps': 7}).train.steps, 7)
    # Every way to derive a config validates: within a section and across sections.
    with self.assertRaisesRegex(ConfigError, 'must be divisible by model.num_heads=3'):
      config_lib.replace(cfg, **{'model.num_heads': 3})
    with self.assertRaisesRegex(ConfigError, 'train.batch_size=8 must be divisible'):
      dataclasses.replace(cfg.train, grad_accum=3)
    with self.assertRaisesRegex(ConfigError, 'data.seq_len=64 exceeds model.max_len=32'):
      dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, max_len=32))
    with self.assertRaisesRegex(ConfigError, "experiment.new_languages names \\['rust'\\]"):
      config_lib.replace(cfg, **{'experiment.new_languages': 'rust'})
    with self.assertRaisesRegex(ConfigError, "unknown config field 'modle.d_model'"):
      config_lib.replace(cfg, **{'modle.d_model': 3})

  def test_list_fields_parse_from_the_command_line(self):
    argv = ['main', f'--config={testing.REPO}/configs/tiny.py',
            '--config.data.languages=python, go,php', '--config.data.weights=1,0,0.5',
            '--config.eval.samples=4', '--config.eval.k=1,4', '--config.corpus.dedup=exact']
    values = flags.FlagValues()  # main.py's flag, parsed as absl parses the command line
    config_flags.DEFINE_config_file('config', None, 'config', flag_values=values, sys_argv=argv)
    with warnings.catch_warnings():  # ml_collections loads the file with load_module()
      warnings.simplefilter('ignore', DeprecationWarning)
      values(argv)
    cfg = config_lib.validate(values.config)
    self.assertEqual(cfg.data.languages, ('python', 'go', 'php'))
    self.assertEqual(cfg.data.weights, (1.0, 0.0, 0.5))
    self.assertEqual(cfg.eval.k, (1, 4))
    self.assertEqual(cfg.corpus.dedup, ('exact',))
    self.assertEqual(cfg.experiment.controls, ())  # '' is the empty list
    # Tuples and lists are taken too, in a ConfigDict or by replace.
    d = testing.load_config()
    with d.ignore_type():
      d.data.languages = ('python', 'go')
    self.assertEqual(config_lib.validate(d).data.languages, ('python', 'go'))

  def test_default_config_is_generated_from_the_sections(self):
    self.assertEqual(config_lib.default_config().to_dict(), config_lib.Config().to_dict())
    self.assertEqual(config_lib.default_config().data.languages, 'python,php,go')
    self.assertEqual(config_lib.validate(config_lib.default_config()), config_lib.Config())

  def test_every_field_has_a_doc(self):
    sections = [f for f in dataclasses.fields(config_lib.Config)]
    self.assertLen(sections, 13)  # the seed and 12 sections
    for f in sections:
      self.assertTrue(f.metadata.get('doc'), f.name)
      section = f.default_factory() if f.name != 'seed' else None
      for g in dataclasses.fields(section) if section is not None else ():
        doc = g.metadata.get('doc')
        self.assertIsInstance(doc, str, f'{f.name}.{g.name}')
        self.assertGreater(len(doc.strip()), 5, f'{f.name}.{g.name}')
        self.assertNotIn('\n', doc, f'{f.name}.{g.name}')

  def test_config_is_the_bottom_layer(self):
    code = ('import sys; from babel_jax import config; '
            'print(sorted(m for m in sys.modules if m.startswith("babel_jax")))')
    out = subprocess.run([sys.executable, '-c', code], cwd=testing.REPO, capture_output=True,
                         text=True, check=True)
    self.assertEqual(out.stdout.split(), ["['babel_jax',", "'babel_jax.config',",
                                          "'babel_jax.config.forms',", "'babel_jax.config.schema',",
                                          "'babel_jax.config.sections',", "'babel_jax.errors']"])

  def test_mesh_mismatch_names_numbers(self):
    mesh = config_lib.Mesh(data=2, fsdp=2, tensor=3)
    with self.assertRaisesRegex(ConfigError,
                                r'data=2 x fsdp=2 x tensor=3 = 12 devices, but 8'):
      sharding.make_mesh(mesh)
    with self.assertRaisesRegex(ConfigError, r'= 9 does not divide the 8'):
      sharding.make_mesh(dataclasses.replace(mesh, data=-1, fsdp=3, tensor=3))

  def test_unwritable_workdir(self):
    d = tempfile.mkdtemp()
    blocker = os.path.join(d, 'file')
    open(blocker, 'w').close()
    with self.assertRaisesRegex(ConfigError, 'not writable'):
      RunDir(os.path.join(blocker, 'run')).ensure_writable()

  def test_cli_reports_errors_before_work(self):
    workdir = os.path.join(tempfile.mkdtemp(), 'run')
    out = testing.run_main(workdir, '--config.model.num_heads=3')
    self.assertNotEqual(out.returncode, 0)
    self.assertIn('model.d_model=32 must be divisible by model.num_heads=3', out.stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'checkpoints')))
    out = testing.run_main(workdir, '--config.train.stepz=3')
    self.assertNotEqual(out.returncode, 0)
    self.assertIn('stepz', out.stderr)

  def test_saved_config_round_trips(self):
    cfg = testing.config(**{'data.weights': '1,0.25,0', 'eval.samples': 2, 'eval.k': (1, 2),
                            'corpus.planted': 'python_clone'})
    text = config_lib.to_json(cfg)
    self.assertEqual(config_lib.from_json(text), cfg)
    self.assertEqual(config_lib.to_json(testing.load_config()), config_lib.to_json(
        config_lib.validate(testing.load_config())))
    # List fields are written as the command line writes them, so config.json and the phase
    # fingerprints of experiment directories read as before.
    saved = json.loads(text)
    self.assertEqual(saved['data']['languages'], 'python,php,go')
    self.assertEqual(saved['data']['weights'], '1,0.25,0')
    self.assertEqual(saved['eval']['k'], '1,2')
    self.assertEqual(saved['corpus']['dedup'], 'exact,near')

  def test_old_config_json_reads(self):
    """A config.json written before the typed config: list fields as comma-separated text
    (spaces included), fields added since missing; JSON lists are read too."""
    old = {'seed': 3, 'model': {'vocab_size': 256, 'd_model': 32, 'num_heads': 2, 'max_len': 64},
           'data': {'languages': 'python, go', 'weights': '1,0', 'seq_len': 64},
           'eval': {'k': '1', 'languages': ''}, 'experiment': {'controls': 'clone,scrambled'}}
    cfg = config_lib.from_json(json.dumps(old))
    self.assertEqual((cfg.seed, cfg.data.languages, cfg.data.weights), (3, ('python', 'go'),
                                                                          (1.0, 0.0)))
    self.assertEqual((cfg.eval.k, cfg.eval.languages), ((1,), ()))
    self.assertEqual(cfg.experiment.controls, ('clone', 'scrambled'))
    self.assertEqual(cfg.train, config_lib.Train())  # missing: today's defaults
    self.assertEqual(config_lib.from_json(json.dumps(
        {**old, 'data': {**old['data'], 'languages': ['python', 'go'], 'weights': [1, 0]}})), cfg)
    with self.assertRaisesRegex(ConfigError, r"unknown config field 'data\.langs' in saved "
                                r"config \(did you mean 'languages'\?\)"):
      config_lib.from_json(json.dumps({'data': {'langs': 'python'}}))


if __name__ == '__main__':
  absltest.main()
