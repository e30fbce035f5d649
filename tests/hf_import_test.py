"""--mode import / --mode export: Hugging Face directories and Hub revisions <-> run checkpoints.

The Hub is reached through huggingface_hub's own cache layout (models--org--name/snapshots,
refs/<revision>), built here from the golden files and read with HF_HUB_OFFLINE=1: the same
path a user's cache takes, with no network.
"""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import jax
import numpy as np
import safetensors.numpy
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax.bench import hf_bench
from babel_jax.errors import ConfigError
from babel_jax.model import hf
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory
from babel_jax.runtime import hf_checkpoints as hfc
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop
from tests.hf_test import GOLDEN, run
from tests.train_test import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_FINAL_NORM_BIAS = ('transformer.ln_f.bias', 'gpt_neox.final_layer_norm.bias')


def hub_cache(revisions: dict[str, str]) -> str:
  """A Hub cache holding org/tiny with each revision -> a copy of a golden directory; the
  '<family>_changed' source is that golden model with its final norm's bias altered (a real new
  training step)."""
  cache = tempfile.mkdtemp()
  repo = os.path.join(cache, 'models--org--tiny')
  os.makedirs(os.path.join(repo, 'refs'))
  for i, (rev, source) in enumerate(revisions.items()):
    commit = f'{i:040x}'
    snap = os.path.join(repo, 'snapshots', commit)
    shutil.copytree(os.path.join(GOLDEN, source.replace('_changed', '')), snap)
    if source.endswith('_changed'):
      path = os.path.join(snap, 'model.safetensors')
      tensors = safetensors.numpy.load_file(path)
      bias = next(k for k in tensors if k in _FINAL_NORM_BIAS)
      tensors[bias] = tensors[bias] + 0.5
      safetensors.numpy.save_file(tensors, path, metadata={'format': 'pt'})
    with open(os.path.join(repo, 'refs', rev), 'w') as f:
      f.write(commit)
  return cache


def restored(workdir: str, step: int):
  run_dir = RunDir(workdir)
  cfg = run_dir.typed_config()
  rt = factory.build_runtime(cfg)
  manager = ckpt_lib.make_manager(run_dir.checkpoints, read_only=True)
  return cfg, ckpt_lib.restore_params(manager, step, rt.abstract_params)


class ImportTest(absltest.TestCase):

  def test_imported_checkpoint_gives_the_source_logits(self):
    workdir = tempfile.mkdtemp()
    hfc.import_run(config_lib.default_config(), workdir, os.path.join(GOLDEN, 'neox'))
    cfg, params = restored(workdir, 0)
    golden = np.load(os.path.join(GOLDEN, 'neox', 'golden.npz'))
    logits, _ = run(cfg, jax.device_get(params), golden['input_ids'])
    np.testing.assert_allclose(logits, golden['logits'], atol=1e-4, rtol=0)
    manifest = io.read_json(os.path.join(workdir, hfc.MANIFEST))
    self.assertEqual(manifest['revisions'][0]['family'], 'gpt_neox')
    self.assertTrue(os.path.isfile(os.path.join(workdir, hfc.TOKENIZER)))

  def test_revision_series_from_the_hub_cache_with_a_duplicate_reported(self):
    cache = hub_cache({'step0': 'gpt2', 'step1000': 'gpt2', 'step2000': 'gpt2_changed'})
    workdir = tempfile.mkdtemp()
    with mock.patch.dict(os.environ, {'HF_HUB_CACHE': cache, 'HF_HUB_OFFLINE': '1'}), \
        mock.patch('huggingface_hub.constants.HF_HUB_CACHE', cache), \
        mock.patch('huggingface_hub.constants.HF_HUB_OFFLINE', True):
      manifest = hfc.import_run(config_lib.default_config(), workdir, 'org/tiny',
                                'step0:step2000:1000')
      self.assertEqual([r['step'] for r in manifest['revisions']], [0, 1000, 2000])
      self.assertEqual(manifest['duplicates'], [['step0', 'step1000']])
      self.assertEqual(ckpt_lib.complete_steps(RunDir(workdir).checkpoints), [0, 1000, 2000])
      _, p0 = restored(workdir, 0)
      _, p2 = restored(workdir, 2000)
      np.testing.assert_allclose(np.asarray(p2['final_norm']['LayerNorm_0']['bias']),
                                 np.asarray(p0['final_norm']['LayerNorm_0']['bias']) + 0.5,
                                 atol=1e-6)
      # Resumable: a second call imports nothing again.
      again = hfc.import_run(config_lib.default_config(), workdir, 'org/tiny',
                             'step0:step2000:1000')
      self.assertEqual(again['revisions'], manifest['revisions'])
      with self.assertRaisesRegex(ConfigError, r'org/tiny@step3000 is not in the Hub cache'):
        hfc.import_run(config_lib.default_config(), tempfile.mkdtemp(), 'org/tiny', 'step3000')

  def test_revision_names(self):
    self.assertEqual(hfc.revisions('step0:step3000:1000'),
                     ['step0', 'step1000', 'step2000', 'step3000'])
    self.assertEqual(hfc.revisions('main, v1'), ['main', 'v1'])
    self.assertEqual(hfc.revisions(''), [None])
    self.assertEqual([hfc.step_of(r, i) for i, r in enumerate(
        ['step143000', 'checkpoint-step-400', 'main'])], [143000, 400, 2])
    with self.assertRaisesRegex(ConfigError, 'A <= B'):
      hfc.revisions('step10:step0:5')


class ExportTest(absltest.TestCase):

  def test_a_native_run_exports_as_gpt2_and_reads_back_identical(self):
    workdir = tempfile.mkdtemp()
    loop.train(tiny(**{'train.steps': 3}), workdir)
    out = os.path.join(tempfile.mkdtemp(), 'gpt2')
    hfc.export_run(workdir, out)
    self.assertEqual(hf.read_config(out)['model_type'], 'gpt2')
    _, params, _ = hf.read_dir(out)
    _, native = restored(workdir, 3)
    for a, b in zip(jax.tree.leaves(jax.device_get(native)), jax.tree.leaves(params)):
      np.testing.assert_array_equal(np.asarray(a), b)

  def test_command_line_errors_are_one_line(self):
    env = dict(os.environ, PYTHONPATH=ROOT)
    for args, expect in (
        (['--mode', 'import', '--workdir', tempfile.mkdtemp()], '--mode import needs --hf'),
        (['--mode', 'export', '--workdir', tempfile.mkdtemp(), '--out', '/tmp/x'],
         'no config.json (not a run directory)')):
      r = subprocess.run([sys.executable, '-m', 'babel_jax.main', *args], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
      self.assertNotEqual(r.returncode, 0)
      self.assertIn(expect, r.stderr)
      self.assertNotIn('Traceback', r.stderr)


if __name__ == '__main__':
  absltest.main()


class BenchTest(absltest.TestCase):

  def test_hf_bench_times_import_lens_and_neurons(self):
    out = tempfile.mkdtemp()
    r = hf_bench.run(os.path.join(GOLDEN, 'neox'), out, b=8, length=8, reps=1)  # 8 devices
    for key in ('import_s', 'restore_s', 'lens_s', 'neurons_s'):
      self.assertGreater(r[key], 0, key)
    self.assertEqual(r['params'], 149_248)  # transformers' count for the golden NeoX
    batch = np.load(os.path.join(out, 'batch.npz'))
    self.assertEqual(batch['tokens'].shape, (8, 8))
