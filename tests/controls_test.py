"""Controls with a known answer: planted languages, the aligned lens, effective data transferred
and the solution loss, each against an answer known in advance."""

from tests import testing  # noqa: F401  (first: fake devices)

import collections
import os
import tempfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from babel_jax import model as model_lib
from babel_jax.data import corpus, loader, manifest as manifest_lib, pipeline, planted
from babel_jax.data import tokenizer
from babel_jax.data.mixture_spec import MixtureSpec
from babel_jax.dynamics import transfer
from babel_jax.errors import DataError
from babel_jax.probes import aligned


class PlantedTest(absltest.TestCase):

  def test_maps_are_seeded_bijections_into_disjoint_ranges(self):
    base = 500
    specs = planted.specs(['python_scrambled', 'python_clone', 'python_partial'], seed=3,
                          share=0.5)
    self.assertEqual([(p.kind, p.index) for p in specs],
                     [('clone', 0), ('partial', 1), ('scrambled', 2)])
    movable = np.arange(base) % 3 == 0  # stands for the identifier pieces
    maps = [planted.id_map(p, base, movable) for p in specs]
    for p, m in zip(specs, maps):
      moved = m != np.arange(base)
      self.assertEqual(m[0], 0)  # padding stays
      self.assertEqual(len(set(m[moved].tolist())), int(moved.sum()))  # a bijection
      lo, hi = base * (p.index + 1), base * (p.index + 2)
      self.assertTrue(((m[moved] >= lo) & (m[moved] < hi)).all(), p.kind)
      np.testing.assert_array_equal(m, planted.id_map(p, base, movable))  # deterministic
    clone, partial, _ = maps
    self.assertEqual(int((clone != np.arange(base)).sum()), base - 1)  # every id but padding
    moved = partial != np.arange(base)
    self.assertFalse(moved[~movable].any())  # anchors are shared
    self.assertEqual(int(moved.sum()), round(0.5 * (movable.sum() - 1)))  # the seeded share
    other = planted.id_map(planted.specs(['python_partial'], 4, 0.5)[0], base, movable)
    self.assertFalse(np.array_equal(other != np.arange(base), moved))  # another seed
    inverse = planted.inverse(maps, planted.vocab_size(base, 3))
    for m in maps:
      moved = m != np.arange(base)
      np.testing.assert_array_equal(inverse[m[moved]], np.flatnonzero(moved))
    self.assertTrue((inverse[:base] == -1).all())
    with self.assertRaisesRegex(DataError, 'python_copy'):
      planted.specs(['python_copy'], 0, 1.0)

  def test_scrambling_keeps_each_documents_counts(self):
    p = planted.specs(['go_scrambled'], 7, 1.0)[0]
    mapping = planted.id_map(p, 300, np.ones(300, bool))
    rng = np.random.default_rng(0)
    for _ in range(5):
      doc = np.concatenate([[2], rng.integers(4, 300, size=50), [3]]).astype(np.int32)
      out = planted.transform(p, mapping, doc)
      self.assertEqual(collections.Counter(out.tolist()),
                       collections.Counter(mapping[doc].tolist()))
      self.assertEqual((out[0], out[-1]), (mapping[2], mapping[3]))  # BOS and EOS stay put
      self.assertFalse(np.array_equal(out, mapping[doc]))  # the order is gone
      np.testing.assert_array_equal(out, planted.transform(p, mapping, doc))  # per document
    clone = planted.specs(['go_clone'], 7, 1.0)[0]
    np.testing.assert_array_equal(planted.transform(clone, mapping, doc), mapping[doc])

  def test_identifier_pieces(self):
    pieces = ['<pad>', '<unk>', '<s>', '</s>', '<0x41>', '▁def', 'self', '(', '    ', '12',
              '▁=', '_x']
    np.testing.assert_array_equal(
        planted.identifier_pieces(pieces),
        [False, False, False, False, False, True, True, False, False, False, False, True])

  def test_corpus_and_pipeline(self):
    """--mode corpus records the planted languages; the pipeline yields their ids."""
    cfg = testing.corpus_config(**{'corpus.planted': 'python_clone,python_scrambled',
                                   'corpus.max_bytes_per_language': 60_000})
    root = tempfile.mkdtemp()
    corpus_dir, tok_dir = os.path.join(root, 'c'), os.path.join(root, 'c', 'tok')
    m = corpus.build_corpus(cfg.corpus, corpus_dir)
    info = m['languages']['python_scrambled']
    self.assertEqual(info['planted'], {'kind': 'scrambled', 'of': 'python', 'index': 1,
                                       'seed': 0, 'share': 1.0})
    self.assertEqual(info['shards'], m['languages']['python']['shards'])
    t = tokenizer.train(cfg.tokenizer, 512, corpus_dir, tok_dir)
    self.assertEqual(t['tokens']['python_clone'], t['tokens']['python'])
    langs = ('python', 'cpp', 'python_clone', 'python_scrambled')
    spec = MixtureSpec({lang: 0.25 for lang in langs})
    with self.assertRaisesRegex(DataError, 'raise model.vocab_size to 1536'):
      pipeline.CorpusSource(corpus_dir, tok_dir, langs, spec, 8, 64, 0, vocab_size=512)
    source = pipeline.CorpusSource(corpus_dir, tok_dir, langs, spec, 8, 64, 0,
                                   read_threads=1, vocab_size=1536)
    b = next(source)
    source.close()
    for i, (lo, hi) in enumerate(((1, 512), (1, 512), (512, 1024), (1024, 1536))):
      tokens = b['tokens'][b['lang_ids'] == i]
      self.assertNotEmpty(tokens, langs[i])
      self.assertTrue(((tokens >= lo) & (tokens < hi)).all(), langs[i])
    self.assertEqual(sorted(source.planted), ['python_clone', 'python_scrambled'])

  def test_synthetic_source(self):
    cfg = testing.config(**{'data.languages': 'python,go,python_clone,python_partial',
                            'model.vocab_size': 3 * 128})
    source = loader.make_source(cfg)
    b = next(source)
    clone = b['tokens'][b['lang_ids'] == 2]
    self.assertTrue(((clone >= 128) & (clone < 256)).all())
    partial = b['tokens'][b['lang_ids'] == 3]
    self.assertTrue((partial < 128 // 4).any() and (partial >= 256).any())  # anchors kept


def _lens_model():
  cfg = testing.config(**{'model.d_model': 64, 'model.num_layers': 4, 'model.num_heads': 2})
  model = model_lib.build_model(cfg.model)
  params = nn.unbox(model_lib.init_boxed(model, jax.random.PRNGKey(0), 16))
  return model, params


class AlignedLensTest(absltest.TestCase):

  def test_known_answer(self):
    """Blocks that add nothing keep each token's embedding, which decodes to that token: the
    primary id. From layer 2 on, an MLP bias adds a large multiple of the planted id's embedding:
    the working language switches to the planted language there."""
    model, params = _lens_model()
    params = jax.tree.map(jnp.zeros_like, params)
    emb = np.random.default_rng(0).normal(size=params['embed']['embedding'].shape)
    emb = emb.astype(np.float32)
    params = dict(params, embed={'embedding': jnp.asarray(emb)},
                  final_norm=jax.tree.map(jnp.ones_like, params['final_norm']))
    params['final_norm']['LayerNorm_0']['bias'] = jnp.zeros(64)
    base = 64
    p = planted.specs(['python_clone'], 0, 1.0)[0]
    mapping = planted.id_map(p, base, np.ones(base, bool))
    langs = ['python', 'python_clone']
    got_base, block_G = aligned.id_blocks({'python_clone': (p, mapping)}, langs, 256)
    self.assertEqual((got_base, block_G.tolist()), (64, [0, 1]))
    # A model whose vocabulary lacks the planted block cannot be read there.
    self.assertEqual(aligned.id_blocks({'python_clone': (p, mapping)}, langs, 100)[1].tolist(),
                     [0, 0])
    inverse = jnp.asarray(planted.inverse([mapping], 256))
    primary, target = 17, int(mapping[17])
    for i in range(2, 4):
      params[f'layer_{i}']['mlp']['down']['bias'] = jnp.asarray(10.0 * emb[target])
    tokens = np.full((3, 8), primary, np.int32)
    targets = np.full((3, 8), target, np.int32)
    targets[1, 4:] = 5  # a target that is no planted id: left out
    lang = np.ones((3, 8), np.int32)
    lang[2] = 0  # python owns no planted block: left out whatever its targets
    batch = {'tokens': tokens, 'targets': targets, 'lang_ids': lang,
             'positions': np.tile(np.arange(8, dtype=np.int32), (3, 1)),
             'segment_ids': np.ones((3, 8), np.int32)}
    out = jax.device_get(aligned.aligned_stats(model, params, batch, inverse,
                                               jnp.asarray(block_G), base=64, num_blocks=2,
                                               num_langs=2))
    np.testing.assert_array_equal(out['positions_G'], [0, 12])
    summary = aligned.summarise_aligned(out, langs, ['python', 'python_clone'])
    self.assertEqual(list(summary), ['python_clone'])  # no positions, no reading
    clone = summary['python_clone']
    self.assertEqual(clone.positions, 12)
    np.testing.assert_allclose(clone.primary_top1_within[:2], [1, 1])
    np.testing.assert_allclose(clone.target_top1_within[2:], [1, 1])
    self.assertTrue(all(s > 0.5 for s in clone.primary_share[:2]))
    self.assertTrue(all(s < 0.5 for s in clone.primary_share[2:]))
    self.assertTrue(all(s > 0.5 for s in clone.primary_block_share[:2]))
    self.assertTrue(all(s < 0.5 for s in clone.primary_block_share[2:]))
    # Every position reads alike (attention adds nothing), so the means keep p = m q.
    np.testing.assert_allclose(clone.primary_prob, np.multiply(clone.primary_block_mass,
                                                               clone.primary_within), rtol=1e-4)
    np.testing.assert_allclose(clone.target_prob, np.multiply(clone.target_block_mass,
                                                              clone.target_within), rtol=1e-4)

  def test_block_bias_and_structure_are_read_apart(self):
    """Hand-set lens logits where the id blocks' bias and the within-block structure disagree.
    Ids: primary block [0, 8), python_clone's [8, 16), python_scrambled's [16, 24), then 2 ids
    beyond every block. Layer 0 holds the disagreements, layer 1 structure-free blocks."""
    base, vocab = 8, 26
    inverse_V = np.full(vocab, -1, np.int32)
    inverse_V[9:16] = inverse_V[17:24] = np.arange(1, 8)
    logits = np.zeros((2, 1, 4, vocab), np.float32)
    # Position 0, python_clone, target 11 (stands for 3). Layer 0: the primary block as a whole
    # pushed far down, yet within it the mirrored id 3 leads; the clone block is flat.
    logits[0, 0, 0, :8] = -30.0
    logits[0, 0, 0, 3] += 5.0
    logits[1, 0, 0, :8] = 30.0  # layer 1: the bias the other way, both blocks flat
    # Position 1, python_scrambled, target 21 (stands for 5). Layer 0: the scrambled block
    # pushed down, the target leading within it; the clone block's copy of 5 (id 13) is
    # the wrong block's and must not be read. Layer 1: all flat.
    logits[0, 0, 1, 16:24] = -20.0
    logits[0, 0, 1, 21] += 4.0
    logits[0, 0, 1, 13] = 10.0
    batch = {'targets': np.array([[11, 21, 3, 0]], np.int32),
             'lang_ids': np.array([[1, 2, 0, -1]], np.int32)}  # python: no block; padding
    out = jax.device_get(aligned.aligned_readings(
        jnp.asarray(logits), batch, jnp.asarray(inverse_V), jnp.array([0, 1, 2], jnp.int32),
        base=base, num_blocks=3, num_langs=3))
    np.testing.assert_array_equal(out['positions_G'], [0, 1, 1])
    langs = ['python', 'python_clone', 'python_scrambled']
    summary = aligned.summarise_aligned(out, langs, langs[1:])
    clone, scrambled = summary['python_clone'], summary['python_scrambled']
    # Structure says primary at layer 0 of the clone: the within-block share reads it.
    q_primary = np.exp(5) / (np.exp(5) + 7)
    np.testing.assert_allclose(clone.primary_within[0], q_primary, rtol=1e-5)
    np.testing.assert_allclose(clone.target_within[0], 1 / 8, rtol=1e-5)
    np.testing.assert_allclose(clone.primary_share[0], q_primary / (q_primary + 1 / 8),
                               rtol=1e-5)
    self.assertGreater(clone.primary_share[0], 0.85)
    self.assertEqual((clone.primary_top1_within[0], clone.target_top1_within[0]), (1.0, 0.0))
    # ... while the block share, and the whole-vocabulary ratio that mixes both, read the bias.
    self.assertLess(clone.primary_block_share[0], 1e-9)
    self.assertLess(clone.primary_prob[0] / (clone.primary_prob[0] + clone.target_prob[0]), 1e-9)
    # Flat blocks read 0.5 whatever the bias; the block share reads the bias alone.
    self.assertAlmostEqual(clone.primary_share[1], 0.5, places=6)
    self.assertGreater(clone.primary_block_share[1], 1 - 1e-9)
    # The scrambled position is read in its own block, whatever the clone block holds.
    q_planted = np.exp(4) / (np.exp(4) + 7)
    np.testing.assert_allclose(scrambled.target_within[0], q_planted, rtol=1e-5)
    np.testing.assert_allclose(scrambled.primary_share[0], (1 / 8) / (1 / 8 + q_planted),
                               rtol=1e-5)
    self.assertEqual(scrambled.target_top1_within[0], 1.0)
    np.testing.assert_allclose(scrambled.primary_block_share[0],
                               1 / (1 + np.exp(-20) * (np.exp(4) + 7) / 8), rtol=1e-6)
    self.assertAlmostEqual(scrambled.primary_share[1], 0.5, places=6)
    self.assertAlmostEqual(scrambled.primary_block_share[1], 0.5, places=6)
    np.testing.assert_allclose([scrambled.primary_block_mass[1], scrambled.target_block_mass[1]],
                               [8 / vocab, 8 / vocab], rtol=1e-5)


class EffectiveTransferTest(absltest.TestCase):

  @staticmethod
  def _power_law(tokens, a=50.0, b=0.3, c=1.0, untrained=10.0):
    """L(D) = a D^-b + c, and the untrained loss at D = 0."""
    tokens = np.asarray(tokens, np.float64)
    with np.errstate(divide='ignore'):
      return np.where(tokens > 0, a * tokens ** -b + c, untrained)

  def test_known_answer(self):
    # From scratch: loss 10 - log2(tokens) for tokens 1..1024 (1 at 0 tokens: untrained).
    ref_tokens = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], float)
    ref_loss = np.concatenate([[11.0], 10 - np.log2(ref_tokens[1:])])
    # The continual run reaches after D_F tokens the loss the scratch run reaches at 4 D_F.
    tokens = np.array([0, 2, 8, 32, 128])
    loss = np.concatenate([[11.0], 10 - np.log2(4 * tokens[1:])])
    et = transfer.effective_transfer(tokens, loss, ref_tokens, ref_loss)
    self.assertTrue(np.isnan(et.fraction[0]))
    np.testing.assert_array_equal(et.fine_tuning_tokens, tokens)  # D_F
    np.testing.assert_allclose(et.effective_tokens[1:], 4 * tokens[1:])  # D_E
    np.testing.assert_allclose(et.transferred_tokens[1:], 3 * tokens[1:])  # D_T = D_E - D_F
    np.testing.assert_allclose(et.fraction[1:], 3.0)  # D_T / D_F
    self.assertFalse(et.censored.any())
    np.testing.assert_array_equal(et.exact, [False, True, True, True, True])
    # Below anything the scratch run reached: a lower bound, flagged.
    et = transfer.effective_transfer([512], [-5.0], ref_tokens, ref_loss)
    self.assertTrue(et.censored[0])
    self.assertFalse(et.exact[0])
    self.assertEqual(et.effective_tokens[0], 1024)
    # Worse than the untrained scratch run: no data is worth anything, D_T = -D_F.
    et = transfer.effective_transfer([64], [20.0], ref_tokens, ref_loss)
    np.testing.assert_allclose(et.fraction, [-1.0])
    # Between checkpoints: linear in log tokens.
    self.assertAlmostEqual(transfer.tokens_to_reach(ref_tokens, ref_loss, 10 - 2.5)[0],
                           2 ** 2.5)
    # A noisy reference counts its best loss so far: a bump at 16 tokens leaves the best at 7
    # (from 8 tokens) until 32 tokens reach 5, so 6.5 is reached a quarter of the way (in log
    # tokens) from 16 to 32.
    noisy = ref_loss.copy()
    noisy[5] = 9.9
    self.assertAlmostEqual(transfer.tokens_to_reach(ref_tokens, noisy, 6.5)[0], 16 * 2 ** 0.25)

  def test_power_law_shifted_by_a_known_transfer(self):
    """A reference L(D) = a D^-b + c, four times as long as the continual run; the continual
    run is the reference shifted by D_T (its loss after D_F tokens is L(D_F + D_T)), so
    D_T / D_F is known at every checkpoint."""
    total, d_t = 1.6e6, 0.73e6  # D_T between checkpoints: interpolated
    tokens = np.linspace(0, total, 17)
    ref_tokens = np.linspace(0, 4 * total, 65)
    et = transfer.effective_transfer(tokens, self._power_law(tokens + d_t), ref_tokens,
                                     self._power_law(ref_tokens))
    self.assertFalse(et.censored.any())
    np.testing.assert_allclose(et.effective_tokens[1:], tokens[1:] + d_t, rtol=1e-3)
    np.testing.assert_allclose(et.transferred_tokens[1:], d_t, rtol=2e-3)
    np.testing.assert_allclose(et.fraction[1:], d_t / tokens[1:], rtol=2e-3)

  def test_a_reference_as_long_as_the_continual_run_censors_the_late_readings(self):
    """Every continual checkpoint whose loss L(D_F + D_T) lies beyond the reference's end
    (D_F + D_T > the reference's tokens) is censored: D_E is only a lower bound there."""
    total, d_t = 1.6e6, 0.73e6  # D_T between checkpoints: interpolated
    tokens = np.linspace(0, total, 17)
    et = transfer.effective_transfer(tokens, self._power_law(tokens + d_t), tokens,
                                     self._power_law(tokens))
    late = tokens + d_t > total
    np.testing.assert_array_equal(et.censored, late)
    self.assertEqual(int(late.sum()), 8)
    np.testing.assert_allclose(et.effective_tokens[late], total)  # the bound: the reference's end
    np.testing.assert_allclose(et.fraction[1:][~late[1:]], d_t / tokens[1:][~late[1:]],
                               rtol=2e-3)


class SolutionLossTest(absltest.TestCase):

  def test_scores_the_body_given_the_prompt(self):
    from babel_jax.evaluation import solution_loss, validate
    from babel_jax.runtime import factory
    from babel_jax.train import losses
    corpus_dir, tok_dir = testing.small_corpus()
    tok, _ = tokenizer.load(tok_dir, manifest_lib.load(corpus_dir))
    rows, kept = solution_loss.rows(tok, ['python', 'cpp', 'python_clone'], 512, tokenizer.BOS)
    self.assertEqual(sorted(kept), ['cpp', 'python'])
    self.assertGreaterEqual(kept['python'], 40)
    r = rows[0]
    task, _, body = [s for s in validate.solutions('python') if s[1] == 'correct'][0]
    prompt = validate.records_by_task('python')[task]['prompt']
    n_prompt = 1 + len(tok.encode(prompt))
    self.assertEqual(int((r['targets'] > 0).sum()), len(tok.encode(body)))
    self.assertTrue((r['targets'][:n_prompt - 1] == 0).all())
    self.assertEqual(tok.decode(r['targets'][n_prompt - 1:].tolist()), body)
    cfg = testing.corpus_config(**{'model.max_len': 512, 'data.seq_len': 64})
    rt = factory.build_runtime(cfg)
    params = rt.init_params(0)
    batch = {k: v[None] for k, v in r.items()}
    sums = losses.loss_sums(rt.model, params, batch, 3)
    loss = float(sums['lang_loss_sum'][0] / sums['lang_count'][0])
    self.assertAlmostEqual(loss, np.log(cfg.model.vocab_size), delta=0.5)  # untrained model


if __name__ == '__main__':
  absltest.main()
