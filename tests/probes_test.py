"""Probes: known-answer logit lens and LAPE; the checkpoint walk skips, resumes, reports."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import shutil
import subprocess
import tempfile
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.data import manifest as manifest_lib, tokenizer
from babel_jax.dynamics import run_report
from babel_jax.errors import ConfigError, RunError
from babel_jax.probes import lens, neurons, probe_set, result, stream
from babel_jax.runtime import checkpoints
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop


def _tiny_model():
  cfg = testing.config(**{'model.d_model': 64, 'model.num_layers': 4, 'model.num_heads': 2})
  model = model_lib.build_model(cfg.model)
  params = nn.unbox(model_lib.init_boxed(model, jax.random.PRNGKey(0), 16))
  return model, params


class LensTest(absltest.TestCase):

  def test_known_answer(self):
    """Blocks that add nothing keep the last token's embedding, which decodes to itself; from
    layer 2 on, an MLP bias adds a large multiple of another token's embedding."""
    model, params = _tiny_model()
    params = jax.tree.map(jnp.zeros_like, params)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=params['embed']['embedding'].shape).astype(np.float32)
    params = dict(params, embed={'embedding': jnp.asarray(emb)},
                  final_norm=jax.tree.map(jnp.ones_like, params['final_norm']))
    params['final_norm']['LayerNorm_0']['bias'] = jnp.zeros_like(
        params['final_norm']['LayerNorm_0']['bias'])
    last_tok, other = 17, 99
    for i in range(2, 4):
      layer = jax.tree.map(lambda x: x, params[f'layer_{i}'])
      layer['mlp']['down']['bias'] = jnp.asarray(10.0 * emb[other] - emb[last_tok] * 0)
      params[f'layer_{i}'] = layer
    tokens = np.array([[5, 9, last_tok, 0], [7, last_tok, 0, 0]], np.int32)
    last = np.array([2, 1], np.int32)
    seg = (np.arange(4)[None] <= last[:, None]).astype(np.int32)
    batch = {'tokens': tokens, 'positions': np.arange(4)[None] * seg, 'segment_ids': seg}
    out = jax.device_get(lens.lens_stats(model, params, batch, jnp.asarray(last),
                                         jnp.array([other, other]), jnp.array([last_tok, 3])))
    # Prompt 0: Python id = the last token -> Python wins in layers 0-1, target from layer 2.
    np.testing.assert_array_equal(out['verdict_NxP'][:, 0], [1, 1, 2, 2])
    # Prompt 1: Python id 3 never wins; the target wins from layer 2, neither before.
    np.testing.assert_array_equal(out['verdict_NxP'][:, 1], [0, 0, 2, 2])
    self.assertTrue((out['p_target_NxP'][2:] > 0.5).all())
    summary = lens.summarise_lens(out, ['php', 'php'])['php']
    self.assertEqual(summary.prompts, 2)
    np.testing.assert_allclose(summary.primary_top1, [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(summary.target_top1, [0, 0, 1, 1])
    np.testing.assert_allclose(summary.neither_top1, [0.5, 0.5, 0, 0])
    py, tg = out['p_primary_NxP'].mean(1), out['p_target_NxP'].mean(1)
    np.testing.assert_allclose(summary.primary_share, py / (py + tg), rtol=1e-6)
    self.assertTrue((summary.primary_share[2:] < 0.5).all())


class LapeTest(absltest.TestCase):

  def test_known_neurons(self):
    p = np.full((2, 100, 3), 0.10)
    p += np.linspace(0, 0.01, 600).reshape(2, 100, 3)  # distinct values, all low
    p[0, 5] = [0.9, 0.0, 0.0]  # specific to python
    p[1, 7] = [0.9, 0.85, 0.0]  # python and php: a transferring neuron of php
    p[1, 9] = [0.0, 0.0, 0.95]  # specific to go
    sel = neurons.lape(p, neurons.LapeSettings(filter_rate=0.95, top_rate=0.015,
                                               activation_bar_ratio=0.95))
    member = sel['member_GxNxF']
    self.assertEqual({tuple(x) for x in np.argwhere(member)},
                     {(0, 0, 5), (0, 1, 7), (1, 1, 7), (2, 1, 9)})
    out = neurons.summarise_neurons(member, ['python', 'php', 'go'], 'python')
    self.assertEqual(out.transferring['php'], result.NeuronSet((0, 1), 1, ((1, 7),)))
    self.assertEqual(out.transferring_total('go'), 0)
    self.assertEqual(out.transferring_total('python'), 0)  # the primary transfers to no one
    self.assertEqual(out.specific['python'].indices, ((0, 5), (1, 7)))
    self.assertEqual(result.Neurons.from_json(json.loads(json.dumps(out.to_json()))), out)
    np.testing.assert_array_equal(neurons.mask_without(member[2])[1, 9], 0.0)
    self.assertEqual(neurons.mask_without(member[2]).sum(), 199)

  def test_counts_inside_the_forward_pass(self):
    model, params = _tiny_model()
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 200, size=(2, 16)).astype(np.int32)
    seg = np.ones((2, 16), np.int32)
    seg[1, 12:] = 0
    batch = {'tokens': tokens, 'targets': np.roll(tokens, -1, 1) * seg, 'segment_ids': seg,
             'positions': np.tile(np.arange(16, dtype=np.int32), (2, 1)),
             'lang_ids': np.where(seg > 0, np.array([[0], [1]]), -1).astype(np.int32)}
    ones = jnp.ones((4, 256))
    out = jax.device_get(neurons.neuron_stats(model, params, batch, ones, num_langs=2))
    _, inter = model_lib.forward(model, params, batch, intermediates=True)
    act = np.asarray(inter.mlp_act_NxBxLxF) > 0
    np.testing.assert_array_equal(out['tokens_G'], [16, 12])
    np.testing.assert_allclose(out['active_NxFxG'][..., 0], act[:, 0].sum(1))
    np.testing.assert_allclose(out['active_NxFxG'][..., 1], act[:, 1, :12].sum(1))


class ProbeSetTest(absltest.TestCase):

  def test_shipped_set_is_large_enough_and_bad_prompts_are_named(self):
    raw = probe_set.load_raw()
    for lang in ('php', 'csharp', 'go', 'cpp', 'java', 'javascript'):
      pairs = raw['languages'][lang]
      self.assertGreaterEqual(len(pairs), 20, lang)
      for pair in pairs:
        self.assertGreaterEqual(len(pair['prompts']), 5, pair['id'])
        self.assertNotEqual(pair['target'].lower(), pair['python'].lower(), pair['id'])
    corpus_dir, tok_dir = testing.small_corpus()
    tok, _ = tokenizer.load(tok_dir, manifest_lib.load(corpus_dir))
    ps = probe_set.build_probe_set(tok, ['cpp', 'javascript'], 512)
    self.assertGreater(len(ps.ids), 200)
    self.assertTrue((ps.target_first_P != ps.primary_first_P).all())
    for i in range(len(ps.ids)):
      self.assertEqual(ps.tokens_PxL[i, ps.last_P[i] + 1:].sum(), 0)
    bad = os.path.join(tempfile.mkdtemp(), 'set.json')
    with open(bad, 'w') as f:
      json.dump({'languages': {'cpp': [
          {'id': 'cpp/size', 'target': 'size', 'python': 'size_of', 'prompts': ['v.']},
          {'id': 'cpp/push_back', 'target': 'push_back', 'python': 'append', 'prompts': ['v.']}]}}, f)
    ps = probe_set.build_probe_set(tok, ['cpp'], 512, bad)
    self.assertEqual(ps.ids, ['cpp/push_back#0'])
    self.assertLen(ps.problems, 1)
    self.assertIn('cpp/size#0', ps.problems[0])


def _aligned_reading(share: float, block: float) -> result.AlignedReading:
  layers = lambda v: (v, v)  # noqa: E731
  return result.AlignedReading(
      positions=9, primary_within=layers(0.4), target_within=layers(0.1),
      within_share=layers(share), primary_top1_within=layers(1.0),
      target_top1_within=layers(0.0), primary_block_mass=layers(0.01),
      target_block_mass=layers(0.9), primary_block_share=layers(block),
      primary_prob=layers(0.004), target_prob=layers(0.09))


class ResultTest(absltest.TestCase):

  def test_round_trip_and_older_files(self):
    full = result.ProbeResult(
        step=7, loss={'python': 2.0, 'python_clone': 3.0}, heldout_tokens={'python': 64},
        neurons=result.Neurons({'python': result.NeuronSet((1, 0), 1, ((0, 3),))}, {}),
        lape=result.Lape(0.95, 0.01, 0.95, 0.2, 0.3),
        deactivated_loss={'python': {'python': 2.5}},
        lens={'go': result.LensReading(3, (0.5, 0.0), (0.0, 1.0), (0.5, 0.0), (0.3, 0.1),
                                       (0.1, 0.3))},
        aligned_lens={'python_clone': _aligned_reading(0.8, 0.01)},
        solution_loss={'go': result.SolutionLoss(1.5, 100, 40)}, seconds={'stats': 0.5})
    text = json.dumps(full.to_json())
    self.assertEqual(result.ProbeResult.from_json(json.loads(text)), full)
    np.testing.assert_allclose(full.lens['go'].primary_share, [0.75, 0.25])
    np.testing.assert_allclose(full.aligned_lens['python_clone'].primary_share, [0.8, 0.8])
    # A file of the python_* names (and without what later versions added) still loads.
    old = {'step': 3, 'loss': {'python': 2.0, 'go': 3.0},
           'neurons': {'transferring': {'go': {'total': 4}}},
           'lens': {'go': {'primary_top1': [0.5], 'target_top1': [0.2], 'python_prob': [0.3],
                           'target_prob': [0.1]}}}
    r = result.ProbeResult.from_json(old)
    self.assertEqual((r.step, r.lape, r.neurons.transferring_total('go')), (3, None, 4))
    self.assertEqual(r.lens['go'].primary_top1, (0.5,))
    np.testing.assert_allclose(r.lens['go'].primary_share, [0.75])
    # An aligned lens of the whole-vocabulary share (block bias) is refused, naming the file.
    old['aligned_lens'] = {'python_clone': {'positions': 5, 'python_prob': [0.1],
                                            'target_prob': [0.2], 'python_mass': [0.3],
                                            'primary_top1': [0.0], 'target_top1': [0.0]}}
    with self.assertRaisesRegex(RunError, 'probes/3.json.*within-block.*probe again'):
      result.ProbeResult.from_json(old, 'probes/3.json')


class WalkTest(absltest.TestCase):

  def test_walk_skips_partial_checkpoints_resumes_and_reports(self):
    corpus_dir, tok_dir = testing.small_corpus()
    cfg = testing.corpus_config(**{'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
                                   'train.steps': 12, 'checkpoint.every_steps': 4,
                                   'checkpoint.log_spaced': 4, 'checkpoint.keep_last': 10,
                                   'data.weights': '0.2,0.6,0.2', 'probe.tokens_per_language': 512,
                                   'probe.max_prompts_per_pair': 1})
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    ckpt = os.path.join(workdir, 'checkpoints')
    steps = sorted(int(s) for s in os.listdir(ckpt) if s.isdigit())
    self.assertGreaterEqual(len(steps), 4)
    broken = steps[1]
    shutil.rmtree(os.path.join(ckpt, str(broken), 'params'))
    os.makedirs(os.path.join(ckpt, '13.orbax-checkpoint-tmp-1234'))
    out = stream.walk(cfg, workdir)
    self.assertEqual(out['skipped'], [broken])
    self.assertEqual(out['probed'], [s for s in steps if s != broken])
    first = result.load_all(RunDir(workdir))[0]
    self.assertEqual(sorted(first.loss), ['cpp', 'javascript', 'python'])
    self.assertEqual(sorted(first.lens), ['cpp', 'javascript'])
    self.assertLen(first.lens['cpp'].primary_top1, cfg.model.num_layers)
    self.assertIn('cpp', first.neurons.transferring)
    self.assertGreater(first.heldout_tokens['cpp'], 400)
    self.assertEqual(first.lape.top_rate, cfg.probe.top_rate)
    self.assertEqual(result.ProbeResult.from_json(json.loads(json.dumps(first.to_json()))), first)
    # Again: nothing left to do (done steps are skipped; the broken one is skipped again).
    again = stream.walk(cfg, workdir)
    self.assertEqual(again['probed'], [])
    summary = run_report.write(workdir, cfg.dynamics)
    self.assertEqual(summary['target'], 'cpp')
    for name in ('index.md', 'probes.csv', 'summary.json', 'lens_cpp.png', 'neurons.png',
                 'loss.png'):
      self.assertTrue(os.path.exists(os.path.join(workdir, 'report', name)), name)
    other = testing.corpus_config(**{'model.d_model': 48})
    with self.assertRaisesRegex(ConfigError, 'd_model'):
      stream.walk(other, workdir)

  def test_follow_probes_a_run_while_it_trains(self):
    corpus_dir, tok_dir = testing.small_corpus()
    overrides = {'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
                 'train.steps': 30, 'checkpoint.every_steps': 5, 'checkpoint.log_spaced': 3,
                 'checkpoint.keep_last': 10, 'probe.tokens_per_language': 256,
                 'probe.max_prompts_per_pair': 1, 'probe.deactivate': False,
                 'probe.follow_poll_s': 0.5, 'probe.follow_timeout_s': 120.0}
    cfg = testing.corpus_config(**overrides)
    workdir = tempfile.mkdtemp()
    flags = [f'--config.{k}={v}' for k, v in {
        **overrides, 'corpus.sources': config_lib.joined(cfg.corpus.sources),
        'corpus.languages': config_lib.joined(cfg.corpus.languages),
        'model.vocab_size': 512, 'data.source': 'corpus',
        'data.languages': config_lib.joined(cfg.data.languages),
        'corpus.max_bytes_per_language': 150000, 'corpus.val_fraction': 0.25,
        'tokenizer.sample_bytes_per_language': 100000}.items()]
    trainer = subprocess.Popen(testing.main_command(workdir, *flags), cwd=testing.REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      for _ in range(600):  # the walk needs the run's first checkpoint folder
        if os.path.isdir(os.path.join(workdir, 'checkpoints')):
          break
        time.sleep(0.1)
      out = stream.walk(cfg, workdir, follow=True)
    finally:
      self.assertEqual(trainer.wait(timeout=300), 0)
    saved = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
    self.assertIn(30, saved)
    self.assertEqual(sorted(out['probed']), saved)

  def test_tiny_synthetic_run(self):
    """No tokenizer: LAPE, held-out loss and deactivation only; the held-out loss falls."""
    cfg = testing.config()
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    out = stream.walk(cfg, workdir)
    results = result.load_all(RunDir(workdir))
    self.assertEqual([r.step for r in results], out['probed'])
    first, last = results[0], results[-1]
    self.assertEqual((last.lens, last.aligned_lens), ({}, {}))
    self.assertNotIn('lens', last.to_json())
    for lang in ('python', 'php', 'go'):
      self.assertLess(last.loss[lang], first.loss[lang] - 0.5)
    zeroed = last.deactivated_loss
    self.assertNotEmpty(zeroed)
    for lang, losses in zeroed.items():
      self.assertNotAlmostEqual(losses[lang], last.loss[lang], places=5)

  def test_aligned_lens_reports_the_controls_a_run_trains_on(self):
    """A synthetic run with two planted controls, one of them at weight 0: one Prober serves it,
    and the aligned lens reports the trained control only."""
    cfg = testing.config(**{
        'data.languages': 'python,go,python_clone,python_scrambled', 'data.weights': '1,1,1,0',
        'train.steps': 4, 'checkpoint.every_steps': 4, 'checkpoint.log_spaced': 0,
        'probe.deactivate': False})
    self.assertEqual(stream.trained_languages(cfg), ('python', 'go', 'python_clone'))
    workdir = tempfile.mkdtemp()
    loop.train(cfg, workdir)
    stream.walk(cfg, workdir)
    last = result.load_all(RunDir(workdir))[-1]
    self.assertIn('python_scrambled', last.loss)  # the held-out sample has every language
    self.assertEqual(list(last.aligned_lens), ['python_clone'])
    clone = last.aligned_lens['python_clone']
    self.assertGreater(clone.positions, 100)
    self.assertLen(clone.within_share, cfg.model.num_layers)
    for values in (clone.within_share, clone.primary_block_share, clone.primary_within,
                   clone.target_top1_within):
      self.assertTrue(all(0 <= v <= 1 for v in values))
    # A mixture file decides as data.weights does.
    spec = os.path.join(workdir, 'spec.json')
    with open(spec, 'w') as f:
      json.dump({'weights': {'python': 0, 'go': 0, 'python_clone': 0, 'python_scrambled': 1}}, f)
    cfg = config_lib.replace(cfg, **{'data.mixture': spec})
    self.assertEqual(stream.trained_languages(cfg), ('python_scrambled',))

  def test_step_selection(self):
    avail = [1, 2, 3, 5, 8, 13, 20]
    self.assertEqual(checkpoints.select_steps('', avail), avail)
    self.assertEqual(checkpoints.select_steps('3:13', avail), [3, 5, 8, 13])
    self.assertEqual(checkpoints.select_steps('2::2', avail), [2, 5, 13])
    with self.assertRaisesRegex(ConfigError, 'probe.steps'):
      checkpoints.select_steps('a:b', avail)


if __name__ == '__main__':
  absltest.main()
