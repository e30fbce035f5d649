"""Training: loss falls, sharded and single-device runs agree, accumulation, NaN stop."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import tempfile

import jax
import numpy as np
from absl.testing import absltest

from babel_jax.train import loop
from babel_jax.train import metrics as metrics_lib


def tiny(**overrides):
  """configs/tiny.py, validated, with 'section.field' overrides."""
  return testing.config(**overrides)


def losses(workdir):
  return np.array([m['loss'] for m in metrics_lib.read_metrics(workdir)])


class TrainTest(absltest.TestCase):

  def test_loss_decreases_and_metrics_are_written(self):
    workdir = tempfile.mkdtemp()
    cfg = tiny(**{'train.steps': 60})
    out = loop.train(cfg, workdir)
    self.assertEqual(out['step'], 60)
    records = metrics_lib.read_metrics(workdir)
    self.assertEqual([r['step'] for r in records], list(range(1, 61)))
    first, last = np.mean([r['loss'] for r in records[:5]]), np.mean(
        [r['loss'] for r in records[-5:]])
    self.assertLess(last, first - 1.0)
    for key in ('loss/python', 'loss/php', 'loss/go', 'lr', 'grad_norm', 'tokens_per_s', 'mfu'):
      self.assertIn(key, records[-1])
    self.assertTrue(os.listdir(os.path.join(workdir, 'tb')))
    for name in ('config.json', 'run_info.json'):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)))

  def test_sharded_matches_single_device(self):
    self.assertEqual(jax.device_count(), 8)
    single, sharded = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 8, 'mesh.num_devices': 1}), single)
    out = loop.train(tiny(**{'train.steps': 8, 'mesh.data': 2, 'mesh.fsdp': 2,
                             'mesh.tensor': 2}), sharded)
    # The parameters really are spread over the mesh.
    emb = out['state'].params['embed']['embedding']
    self.assertEqual(len(emb.sharding.device_set), 8)
    self.assertLess(emb.addressable_shards[0].data.size, emb.size)
    np.testing.assert_allclose(losses(sharded), losses(single), rtol=2e-4)

  def test_gradient_accumulation_matches_full_batch(self):
    full, accum = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 6}), full)
    loop.train(tiny(**{'train.steps': 6, 'train.grad_accum': 4}), accum)
    np.testing.assert_allclose(losses(accum), losses(full), rtol=2e-4)

  def test_nan_stops_naming_the_step_and_keeps_last_good_checkpoint(self):
    workdir = tempfile.mkdtemp()
    cfg = tiny(**{'train.steps': 40, 'train.lr': 1e12, 'train.clip_norm': 0.0,
                  'train.warmup_steps': 0, 'checkpoint.every_steps': 1})
    with self.assertRaisesRegex(loop.NonFiniteLossError, r'at step (\d+)') as ctx:
      loop.train(cfg, workdir)
    bad_step = int(ctx.exception.args[0].split('at step ')[1].split(';')[0])
    from babel_jax.runtime import checkpoints as ckpt_lib
    manager = ckpt_lib.make_manager(os.path.join(workdir, 'checkpoints'), read_only=True)
    good = manager.latest_step()
    self.assertIsNotNone(good)
    self.assertLess(good, bad_step)
    self.assertIn(f'last good checkpoint is step {good}', str(ctx.exception))


if __name__ == '__main__':
  absltest.main()
