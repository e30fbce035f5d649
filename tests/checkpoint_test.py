"""Orbax checkpoints: round trip, other mesh, retention, resume after stop/SIGKILL, SIGTERM,
continual pre-training from another run's parameters."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import signal
import subprocess
import tempfile
import time

import jax
import numpy as np
from absl.testing import absltest

from babel_jax.data import loader
from babel_jax.errors import ConfigError
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop
from babel_jax.train import state as state_lib
from tests.train_test import losses, tiny


def _abstract(cfg):
  abstract, _ = state_lib.state_shardings(factory.build_runtime(cfg), state_lib.optimizer(cfg.train))
  return abstract


def _manager(workdir):
  return ckpt_lib.make_manager(os.path.join(workdir, 'checkpoints'), read_only=True)


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _wait_for_checkpoint(workdir, proc, min_step, timeout=120):
  deadline = time.time() + timeout
  ckdir = os.path.join(workdir, 'checkpoints')
  while time.time() < deadline and proc.poll() is None:
    if os.path.isdir(ckdir) and any(d.isdigit() and int(d) >= min_step for d in os.listdir(ckdir)):
      return
    time.sleep(0.02)
  raise AssertionError(f'no checkpoint >= {min_step} appeared; rc={proc.poll()}')


def _spawn(workdir, *args):
  """Starts the CLI with output in files (a full pipe would stall the child)."""
  log = open(os.path.join(tempfile.mkdtemp(), 'log'), 'w+')
  return subprocess.Popen(testing.main_command(workdir, *args), cwd=testing.REPO, stdout=log,
                          stderr=subprocess.STDOUT, text=True), log


class CheckpointTest(absltest.TestCase):

  def test_round_trip_and_restore_on_other_mesh(self):
    workdir = tempfile.mkdtemp()
    cfg = tiny(**{'train.steps': 10})
    out = loop.train(cfg, workdir)
    manager = _manager(workdir)
    self.assertEqual(manager.latest_step(), 10)
    state, meta = ckpt_lib.restore(manager, 10, _abstract(cfg))
    _assert_trees_equal(state.params, out['state'].params)
    _assert_trees_equal(state.opt_state, out['state'].opt_state)
    np.testing.assert_array_equal(state.rng, out['state'].rng)
    self.assertEqual(int(state.step), 10)
    self.assertEqual(meta['step'], 10)
    source = loader.make_source(cfg)
    self.assertTrue(ckpt_lib.restore_data_state(manager, 10, source))
    self.assertEqual(source.get_state(), {'index': 10})
    with open(os.path.join(workdir, 'checkpoints', '10', 'data', 'process_0-of-1.json')) as f:
      self.assertEqual(json.load(f), {'index': 10})
    # Saved on data=8; restore onto fsdp=4 x tensor=2: same values, new layout.
    other = tiny(**{'mesh.data': 1, 'mesh.fsdp': 4, 'mesh.tensor': 2})
    params = ckpt_lib.restore_params(manager, 10, _abstract(other).params)
    _assert_trees_equal(params, out['state'].params)
    kernel = params['layer_0']['mlp']['up']['kernel']
    self.assertEqual(kernel.sharding.spec, jax.sharding.PartitionSpec('fsdp', 'tensor'))

  def test_schedule_keeps_permanent_checkpoints(self):
    cfg = tiny(**{'train.steps': 40})
    permanent = ckpt_lib.permanent_steps(cfg.checkpoint, 40)
    self.assertEqual(permanent, [1, 3, 12, 40])
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    steps = sorted(_manager(workdir).all_steps())
    for s in permanent:
      self.assertIn(s, steps)
    transient = [s for s in steps if s not in permanent]
    self.assertLessEqual(len(transient), cfg.checkpoint.keep_last)
    self.assertIn(30, transient)  # every_steps=10: the latest ones survive.
    self.assertNotIn(10, steps)

  def test_optimizer_state_latest_keeps_it_for_the_resume_only(self):
    reference, pruned = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 30}), reference)
    cfg = tiny(**{'train.steps': 30, 'train.stop_after': 13, 'checkpoint.optimizer_state': 'latest'})
    loop.train(cfg, pruned)
    ckpts = os.path.join(pruned, 'checkpoints')
    steps = ckpt_lib.complete_steps(ckpts)
    self.assertGreater(len(steps), 2)
    with_opt = [s for s in steps if os.path.isdir(os.path.join(ckpts, str(s), 'opt_state'))]
    self.assertEqual(with_opt, [steps[-1]])  # only the newest, which the resume reads
    self.assertEqual(os.listdir(ckpts), [n for n in os.listdir(ckpts) if 'pruned' not in n])
    # A pruned checkpoint still gives its params, the resume matches an uninterrupted run.
    abstract = _abstract(cfg)
    params = ckpt_lib.restore_params(_manager(pruned), steps[0], abstract.params)
    self.assertEqual(jax.tree.structure(params), jax.tree.structure(abstract.params))
    loop.train(tiny(**{'train.steps': 30, 'checkpoint.optimizer_state': 'latest'}), pruned)
    np.testing.assert_allclose(losses(pruned), losses(reference), rtol=1e-6)

  def test_resume_continues_with_same_losses(self):
    reference, resumed = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 30}), reference)
    first = loop.train(tiny(**{'train.steps': 30, 'train.stop_after': 13}), resumed)
    self.assertEqual((first['status'], first['step']), ('stop_after', 13))
    loop.train(tiny(**{'train.steps': 30}), resumed)
    self.assertEqual([m['step'] for m in RunDir(resumed).metrics()], list(range(1, 31)))
    np.testing.assert_allclose(losses(resumed), losses(reference), rtol=1e-6)

  def test_sigkill_then_restart_matches_uninterrupted(self):
    reference, killed = tempfile.mkdtemp(), tempfile.mkdtemp()
    args = ('--config.train.steps=60', '--config.checkpoint.every_steps=5',
            '--config.checkpoint.async_save=true')
    loop.train(tiny(**{'train.steps': 60, 'checkpoint.every_steps': 5}), reference)
    proc, _ = _spawn(killed, *args)
    _wait_for_checkpoint(killed, proc, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    self.assertEqual(proc.returncode, -signal.SIGKILL)
    done_at_kill = len(RunDir(killed).metrics())
    self.assertLess(done_at_kill, 60)
    out = testing.run_main(killed, *args)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    self.assertIn('resumed from', out.stdout)
    self.assertEqual([m['step'] for m in RunDir(killed).metrics()], list(range(1, 61)))
    np.testing.assert_allclose(losses(killed), losses(reference), rtol=1e-6)

  def test_sigterm_saves_and_exits_cleanly(self):
    workdir = tempfile.mkdtemp()
    proc, log = _spawn(workdir, '--config.train.steps=100000')
    _wait_for_checkpoint(workdir, proc, 10)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    log.seek(0)
    output = log.read()
    self.assertEqual(proc.returncode, 0, output[-3000:])
    self.assertIn('signal 15: will save a checkpoint', output)
    last_logged = RunDir(workdir).metrics()[-1]['step']
    self.assertEqual(_manager(workdir).latest_step(), last_logged)
    self.assertLess(last_logged, 100000)

  def test_continual_pretraining_from_another_run(self):
    source, cont = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 20}), source)
    cfg = tiny(**{'train.steps': 3, 'train.lr': 0.0, 'train.init_from': source,
                  'train.init_step': 10})
    loop.train(cfg, cont)
    with open(os.path.join(cont, 'run_info.json')) as f:
      info = json.load(f)
    self.assertEqual(info['init_step'], 10)
    self.assertEqual([m['step'] for m in RunDir(cont).metrics()], [1, 2, 3])
    abstract = _abstract(cfg)
    src_params = ckpt_lib.restore_params(_manager(source), 10, abstract.params)
    state, _ = ckpt_lib.restore(_manager(cont), 3, abstract)
    _assert_trees_equal(state.params, src_params)  # lr=0: still exactly the source's params.
    # The starting point is kept as step 0, so curves start where continual training does.
    self.assertEqual(sorted(_manager(cont).all_steps())[0], 0)
    _assert_trees_equal(ckpt_lib.restore_params(_manager(cont), 0, abstract.params), src_params)
    count = jax.tree.leaves(state.opt_state[1][0].count)[0]
    self.assertEqual(int(count), 3)  # a fresh optimizer, not the source's 10 steps.
    bad = tiny(**{'train.init_from': source, 'model.d_model': 64})
    with self.assertRaisesRegex(ConfigError, 'd_model: 32 there vs 64 here'):
      loop.train(bad, tempfile.mkdtemp())

  def test_init_from_a_smaller_vocabulary_grows_fresh_rows(self):
    """A primary run on the real vocabulary continued with planted ids: the source's rows are
    kept exactly, the new rows follow the init distribution (not trained down), and a larger
    source vocabulary is one clear error."""
    source, cont = tempfile.mkdtemp(), tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 30, 'model.vocab_size': 128}), source)
    cfg = tiny(seed=7, **{'train.steps': 1, 'train.lr': 0.0, 'train.init_from': source,
                          'model.vocab_size': 512})
    loop.train(cfg, cont)
    with open(os.path.join(cont, 'run_info.json')) as f:
      info = json.load(f)
    self.assertEqual(info['grown_vocabulary'], {'from': 128, 'to': 512, 'fresh_rows_seed': 7})
    src_cfg = tiny(**{'model.vocab_size': 128})
    src = ckpt_lib.restore_params(_manager(source), 30, _abstract(src_cfg).params)
    step0 = ckpt_lib.restore_params(_manager(cont), 0, _abstract(cfg).params)
    embed_src = np.asarray(src['embed']['embedding'])
    embed = np.asarray(step0['embed']['embedding'])
    np.testing.assert_array_equal(embed[:128], embed_src)
    fresh = np.asarray(factory.build_runtime(cfg).init_params(7)['embed']['embedding'])
    np.testing.assert_array_equal(embed[128:], fresh[128:])
    # The fresh rows look like an untrained embedding: init scale, nearly orthogonal.
    init_std = cfg.model.init_std
    self.assertAlmostEqual(float(embed[128:].std()), init_std, delta=0.1 * init_std)
    unit = embed[128:] / np.linalg.norm(embed[128:], axis=1, keepdims=True)
    cosine = unit @ unit.T
    self.assertLess(float(np.abs(cosine[np.triu_indices(len(unit), 1)]).mean()), 0.2)
    for name in ('pos_embed', 'layer_0', 'final_norm'):
      _assert_trees_equal(step0[name], src[name])
    with self.assertRaisesRegex(ConfigError, 'vocabulary of 512 ids, more than '
                                'model.vocab_size=128'):
      loop.train(tiny(**{'train.init_from': cont, 'model.vocab_size': 128}), tempfile.mkdtemp())

  def test_first_update_has_a_learning_rate(self):
    """Warm-up starts above 0: the checkpoint at step 1 follows a real update."""
    cfg = tiny(**{'train.warmup_steps': 20})
    schedule = state_lib.lr_schedule(cfg.train)
    self.assertAlmostEqual(float(schedule(0)), cfg.train.lr / 20, places=7)
    self.assertAlmostEqual(float(schedule(20)), cfg.train.lr, places=7)


if __name__ == '__main__':
  absltest.main()
