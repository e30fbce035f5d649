"""Hugging Face GPT-2, GPT-NeoX and Llama checkpoints: parity with transformers, round trips.

The golden files (tests/golden/hf/, made by launch/make_hf_golden.sh in a torch virtualenv)
hold tiny random models, input ids, transformers' float32 logits and the residual stream after
every layer; this suite reads them with no torch installed.
"""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.errors import ConfigError
from babel_jax.model import hf
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden', 'hf')
FAMILIES = ('gpt2', 'neox', 'llama', 'llama_bf16')


def imported(name: str, **model):
  """(config, params, golden arrays, provenance) of a golden model read by hf.read_dir."""
  fields, params, info = hf.read_dir(os.path.join(GOLDEN, name))
  cfg = config_lib.replace(config_lib.default_config(),
                           model={**fields, 'attention_impl': 'xla', **model},
                           **{'data.seq_len': 16, 'tokenizer.vocab_size': 0})
  return cfg, params, dict(np.load(os.path.join(GOLDEN, name, 'golden.npz'))), info


def run(cfg, params, ids):
  m = model_lib.build_model(cfg.model)
  b, l = ids.shape
  batch = {'tokens': jnp.asarray(ids, jnp.int32),
           'positions': jnp.broadcast_to(jnp.arange(l, dtype=jnp.int32), (b, l)),
           'segment_ids': jnp.ones((b, l), jnp.int32)}
  if cfg.model.scan_layers:
    params = hf.scan(params, cfg.model.num_layers)
  logits, inter = model_lib.forward(m, params, batch, intermediates=True)
  return np.asarray(logits), np.asarray(inter.resid_NxBxLxD)


def kl_per_token(p_logits, q_logits):
  lp = jax.nn.log_softmax(p_logits.astype(np.float64), -1)
  lq = jax.nn.log_softmax(q_logits.astype(np.float64), -1)
  return np.asarray(jnp.sum(jnp.exp(lp) * (lp - lq), -1))


class ParityTest(parameterized.TestCase):

  @parameterized.parameters(*FAMILIES)
  def test_logits_and_every_layer_match_transformers(self, name):
    cfg, params, g, _ = imported(name)
    logits, resid = run(cfg, params, g['input_ids'])
    np.testing.assert_allclose(logits, g['logits'], atol=1e-4, rtol=0)
    np.testing.assert_allclose(resid, g['resid'], atol=1e-4, rtol=0)
    self.assertLess(kl_per_token(g['logits'], logits).max(), 1e-6)
    # Not vacuous: the golden logits are far from uniform and differ between positions.
    self.assertGreater(np.std(g['logits']), 0.5)

  def test_scanned_layers_give_the_same_logits(self):
    cfg, params, g, _ = imported('llama', scan_layers=True)
    logits, _ = run(cfg, params, g['input_ids'])
    np.testing.assert_allclose(logits, g['logits'], atol=1e-4, rtol=0)

  def test_a_wrong_mapping_is_caught(self):
    # Swapping two layers' weights must break parity: the comparison can fail.
    cfg, params, g, _ = imported('gpt2')
    params['layer_0'], params['layer_1'] = params['layer_1'], params['layer_0']
    logits, _ = run(cfg, params, g['input_ids'])
    self.assertGreater(np.abs(logits - g['logits']).max(), 1e-2)

  def test_architectures_read_from_config(self):
    expect = {'gpt2': dict(positions='learned', norm='layernorm', mlp='gelu', tie_embeddings=True),
              'neox': dict(positions='rotary', rotary_fraction=0.25, parallel_residual=True,
                           mlp='gelu_exact', tie_embeddings=False, norm_eps=1e-5),
              'llama': dict(norm='rmsnorm', mlp='swiglu', num_kv_heads=2, use_bias=False,
                            tie_embeddings=False, norm_eps=1e-6)}
    for name, fields in expect.items():
      got = hf.model_fields(hf.read_config(os.path.join(GOLDEN, name)))
      self.assertEqual({k: got[k] for k in fields}, fields, name)

  def test_provenance_records_files_and_dtype(self):
    *_, info = imported('llama')
    self.assertEqual(len(info['files']), 6)  # the sharded index's six files
    self.assertTrue(all(len(h) == 64 for h in info['files'].values()))
    self.assertEqual(imported('llama_bf16')[3]['dtype'], 'bfloat16')


class TrainTest(parameterized.TestCase):

  @parameterized.parameters('gpt2', 'neox', 'llama')
  def test_each_family_trains_sharded(self, name):
    # The imported architecture (GQA, partial rotary, parallel residual, untied) under the
    # training loop on 8 fake devices: the loss falls on the synthetic source.
    fields = hf.model_fields(hf.read_config(os.path.join(GOLDEN, name)))
    cfg = testing.config(model={**fields, 'vocab_size': 256, 'max_len': 64},
                         **{'train.steps': 30, 'train.lr': 1e-2})
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    losses = [m['loss'] for m in RunDir(workdir).metrics()]
    self.assertLess(np.mean(losses[-5:]), np.mean(losses[:5]) - 0.5)


class RoundTripTest(parameterized.TestCase):

  @parameterized.parameters('gpt2', 'neox', 'llama')
  def test_import_export_import_gives_identical_arrays(self, name):
    cfg, params, _, _ = imported(name)
    out = os.path.join(tempfile.mkdtemp(), 'export')
    hf.write_dir(out, cfg.model.resolved(), params)
    self.assertEqual(sorted(os.listdir(out)), ['config.json', 'model.safetensors'])
    fields, again, _ = hf.read_dir(out)
    self.assertEqual(fields, hf.model_fields(hf.read_config(os.path.join(GOLDEN, name))))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
      np.testing.assert_array_equal(a, b)
    self.assertEqual(jax.tree.structure(params), jax.tree.structure(again))


class BadInputTest(absltest.TestCase):

  def _copy(self, name):
    d = os.path.join(tempfile.mkdtemp(), name)
    shutil.copytree(os.path.join(GOLDEN, name), d)
    return d

  def test_unsupported_architecture_names_the_supported_ones(self):
    d = self._copy('gpt2')
    cfg = hf.read_config(d)
    cfg['model_type'] = 'mistral'
    json.dump(cfg, open(os.path.join(d, 'config.json'), 'w'))
    with self.assertRaisesRegex(ConfigError, r"model_type 'mistral' is not supported; "
                                r'supported: gpt2 .*gpt_neox .*llama'):
      hf.read_dir(d)

  def test_missing_shard_and_missing_weights(self):
    d = self._copy('llama')
    os.remove(os.path.join(d, 'model-00003-of-00006.safetensors'))
    with self.assertRaisesRegex(ConfigError, 'shard model-00003-of-00006.safetensors is missing'):
      hf.read_dir(d)
    d = self._copy('gpt2')
    os.remove(os.path.join(d, 'model.safetensors'))
    with self.assertRaisesRegex(ConfigError, 'no model.safetensors'):
      hf.read_dir(d)

  def test_config_that_does_not_describe_the_weights(self):
    d = self._copy('gpt2')
    cfg = hf.read_config(d)
    cfg['n_layer'] = 3
    json.dump(cfg, open(os.path.join(d, 'config.json'), 'w'))
    with self.assertRaisesRegex(ConfigError, r"tensor 'transformer.h.2.attn.c_attn.weight' is missing"):
      hf.read_dir(d)
    cfg['n_layer'] = 1
    json.dump(cfg, open(os.path.join(d, 'config.json'), 'w'))
    with self.assertRaisesRegex(ConfigError, 'tensors not used by gpt2'):
      hf.read_dir(d)


if __name__ == '__main__':
  absltest.main()
