"""Bad configs fail early with messages that name the field and what was expected."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import tempfile

from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax.errors import ConfigError
from babel_jax.runtime import sharding
from babel_jax.runtime.rundir import RunDir


class ConfigTest(absltest.TestCase):

  def test_shipped_configs_validate(self):
    for name in ('tiny', 'bench_small', 'bench_medium', 'demo', 'gpt2_1p3b', 'gpt2_6p7b',
                 'babel_tower', 'corpus_debian', 'gpu_study', 'calibrate'):
      config_lib.validate(testing.load_config(name))

  def test_unknown_field_is_named(self):
    cfg = testing.load_config()
    cfg.model.unlock()
    cfg.model.d_modle = 3
    with self.assertRaisesRegex(ConfigError, r"unknown config field 'model\.d_modle'"):
      config_lib.validate(cfg)

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
    for field, value, msg in cases:
      cfg = testing.load_config()
      section, key = field.split('.')
      cfg[section][key] = value
      with self.assertRaisesRegex(ConfigError, msg):
        config_lib.validate(cfg)

  def test_mesh_mismatch_names_numbers(self):
    cfg = testing.load_config()
    cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor = 2, 2, 3
    with self.assertRaisesRegex(ConfigError,
                                r'data=2 x fsdp=2 x tensor=3 = 12 devices, but 8'):
      sharding.make_mesh(cfg.mesh)
    cfg.mesh.data, cfg.mesh.fsdp = -1, 3
    with self.assertRaisesRegex(ConfigError, r'= 9 does not divide the 8'):
      sharding.make_mesh(cfg.mesh)

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
    cfg = testing.load_config()
    self.assertEqual(config_lib.from_json(config_lib.to_json(cfg)).to_dict(), cfg.to_dict())


if __name__ == '__main__':
  absltest.main()
