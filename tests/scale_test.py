"""Paper-scale configs on CPU: the 1.3B step compiles sharded, shardings match the golden file,
and --mode plan sizes runs on slices this machine does not have."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os

import jax
import jax.numpy as jnp
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.errors import ConfigError
from babel_jax.runtime import factory
from babel_jax.train import plan as plan_lib
from babel_jax.runtime import sharding
from babel_jax.train import state as state_lib
from babel_jax.train import step as step_lib

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden', 'gpt2_1p3b_shardings.json')


def _config(name, arg='', **overrides):
  cfg = testing.load_config(name, *([arg] if arg else []))
  return config_lib.replace(config_lib.validate(cfg), **overrides)


def _specs(shardings) -> dict[str, list]:
  flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
  return {jax.tree_util.keystr(path): [a if a is None or isinstance(a, str) else list(a)
                                       for a in sh.spec] for path, sh in flat}


class ScaleTest(absltest.TestCase):

  def test_1p3b_step_compiles_on_8_devices_with_golden_shardings(self):
    cfg = _config('gpt2_1p3b', **{'mesh.data': 2, 'mesh.fsdp': 2, 'mesh.tensor': 2,
                                  'train.batch_size': 8})
    rt = factory.build_runtime(cfg)
    tx = state_lib.optimizer(cfg.train)
    abstract, shardings = state_lib.state_shardings(rt, tx)
    self.assertGreater(model_lib.param_count(abstract.params), 1.3e9)
    specs = _specs(shardings.params)
    if os.environ.get('UPDATE_GOLDEN'):
      with open(GOLDEN, 'w') as f:
        json.dump(specs, f, indent=1, sort_keys=True)
    with open(GOLDEN) as f:
      self.assertEqual(specs, json.load(f))
    self.assertLessEqual(sharding.replicated_fraction(shardings.params, abstract.params), 0.02)
    batch_sh = sharding.batch_sharding(rt.mesh)
    batch = {k: jax.ShapeDtypeStruct((8, cfg.data.seq_len), jnp.int32, sharding=batch_sh)
             for k in ('tokens', 'targets', 'segment_ids', 'positions', 'lang_ids')}
    step = step_lib.jit_train_step(rt, tx, shardings, 3, cfg.train.grad_accum)
    compiled = step.lower(abstract, batch).compile()
    # Per-device arguments: the state (params + 2 Adam moments, float32) split over the
    # fsdp x tensor = 4 parameter shards (the data axis holds replicas).
    per_device = compiled.memory_analysis().argument_size_in_bytes
    self.assertLess(per_device, 1.05 * 12 * model_lib.param_count(abstract.params) / 4)

  def test_plan_on_slices_this_machine_does_not_have(self):
    for name in ('gpt2_1p3b', 'gpt2_6p7b'):
      for slice_name in ('v4-32', 'v5p-64', 'v5e-256', '8xh100'):
        out = plan_lib.plan(_config(name, slice_name))
        self.assertEqual(out['warnings'], [], (name, slice_name))
        self.assertEqual(out['devices'], sharding.PRESETS[slice_name]['devices'])
        self.assertLess(out['per_device_gib']['total'], 0.9 * out['device_memory_gib'])
    for name, slice_name in (('gpt2_1p3b', 'h100'), ('gpt2_1p3b', 'h200'),
                             ('gpu_study', 'h100'), ('gpu_study', 'h200')):
      out = plan_lib.plan(_config(name, slice_name))  # one GPU
      self.assertEqual((out['devices'], out['warnings']), (1, []), (name, slice_name))
      self.assertLess(out['per_device_gib']['total'], 0.9 * out['device_memory_gib'])
    cfg = _config('gpt2_1p3b', '8xh100', **{'train.grad_accum': 1})
    out = plan_lib.plan(cfg)
    self.assertTrue(any('GiB per device' in w for w in out['warnings']))
    self.assertIn('WARNING', plan_lib.report(out))

  def test_plan_matches_the_real_model(self):
    cfg = testing.config()
    out = plan_lib.plan(cfg)
    state = state_lib.init_state(factory.build_runtime(cfg), state_lib.optimizer(cfg.train), 0)
    self.assertEqual(out['params'], model_lib.param_count(state.params))
    params_bytes = sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(state.params))
    self.assertAlmostEqual(out['per_device_gib']['params'] * 2**30, params_bytes, delta=1)
    with self.assertRaisesRegex(ConfigError, 'mesh.preset'):
      plan_lib.plan(config_lib.replace(cfg, **{'mesh.preset': 'v9-1'}))


if __name__ == '__main__':
  absltest.main()
