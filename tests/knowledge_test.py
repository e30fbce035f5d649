"""Planted knowledge against known answers: the probe's rows and per-row loss sums, a model that
memorised one fact, its id-mapped clone, the controls' verdict, the curves, and the rise-and-fall
sentences on synthetic curves."""

from tests import testing  # noqa: F401  (first: fake devices)

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import io
from babel_jax import model as model_lib
from babel_jax.data import facts, planted
from babel_jax.dynamics import analysis, controls, curves, run_report, study_report
from babel_jax.errors import ConfigError
from babel_jax.probes import knowledge, prober
from babel_jax.probes import result as result_lib
from babel_jax.probes.result import KnowledgeReading, Neurons, ProbeResult
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import losses

BOS, EOS = 2, 3
CLONE, SCRAMBLED = 'python_clone', 'python_scrambled'


class Bytes:
  """A byte-level tokenizer: no merges, every byte its own id (4 + byte)."""
  vocab_size = 260

  def encode(self, text: str) -> list[int]:
    return [b + 4 for b in text.encode()]


class Merging(Bytes):
  """Bytes, except a newline and a space make one piece: one that straddles the signature's end
  (a signature ends in a newline, a Python body starts with spaces)."""

  def encode(self, text: str) -> list[int]:
    out, i = [], 0
    while i < len(text):
      if text.startswith('\n ', i):
        out.append(300)
        i += 2
      else:
        out.append(ord(text[i]) + 4)
        i += 1
    return out


def _model(vocab: int, max_len: int = 256):
  model = model_lib.build_model(dataclasses.replace(
      testing.config().model, vocab_size=vocab, max_len=max_len, d_model=64, num_layers=2,
      num_heads=2))
  return model, nn.unbox(model_lib.init_boxed(model, jax.random.PRNGKey(0), 16))


def _batch(rows):
  padded = knowledge.pad(rows)
  return {k: np.stack([r[k] for r in padded]) for k in padded[0]}


def _read(model, params, rows, layout):
  sums = jax.jit(functools.partial(knowledge.row_sums, model, num_rows=layout.rows))(
      params, _batch(rows))
  return knowledge.summarise_knowledge(sums['loss_R'], sums['count_R'], layout)


def _clones(base: int, seed: int = 5):
  specs = planted.specs([CLONE, SCRAMBLED], seed, 1.0)
  return {p.name: (p, planted.id_map(p, base, np.ones(base, bool))) for p in specs}


FACTS = facts.generate(4, seed=3)  # fold, string, table, fold


class RowsTest(absltest.TestCase):

  def test_body_targets_only_cut_and_layout(self):
    rows, layout = knowledge.rows(Bytes(), FACTS, ['python', 'go', 'rust'], {}, 512, 260, BOS,
                                  EOS)
    self.assertEqual(layout.languages, ('python', 'go'))  # rust has no renderings
    self.assertEqual(layout.rows, 16)
    self.assertEqual(layout.taught_names['go'], tuple(f.name for f in FACTS.taught))
    self.assertEqual(layout.untaught_names['go'], tuple(f.name for f in FACTS.untaught))
    self.assertEqual(layout.taught_rows['go'], (8, 10, 12, 14))
    for i, fact in enumerate(FACTS.taught):
      r = facts.render(fact, 'go', [])
      row = rows[layout.taught_rows['go'][i]]
      prompt = [BOS] + Bytes().encode(r.head + r.signature)
      body = Bytes().encode(r.body)
      np.testing.assert_array_equal(row['tokens'], (prompt + body)[:-1])
      np.testing.assert_array_equal(row['targets'][:len(prompt) - 1], 0)
      np.testing.assert_array_equal(row['targets'][len(prompt) - 1:], body)
      self.assertTrue((row['lang_ids'] == 1).all())
      self.assertTrue((row['row_ids'] == layout.taught_rows['go'][i]).all())
    # Cut to 76 positions: a pair is kept when both bodies start within them (the row is cut
    # after), else dropped: Go's string pair (prompts of 77 tokens with BOS) and Java's table
    # pair (77 and 76: one half is enough to drop it).
    cut, small = knowledge.rows(Bytes(), FACTS, ['go', 'java'], {}, 76, 260, BOS, EOS)
    self.assertTrue(all(len(r['tokens']) <= 76 for r in cut))
    self.assertEqual(small.dropped, {'go': 1, 'java': 1})
    self.assertEqual(small.taught_names['go'], tuple(FACTS.taught[i].name for i in (0, 2, 3)))
    self.assertEqual(small.untaught_names['java'],
                     tuple(FACTS.untaught[i].name for i in (0, 1, 3)))
    tebur = cut[small.taught_rows['go'][1]]  # Go's table fact: 53 + 95 tokens, cut to 76
    np.testing.assert_array_equal(tebur['tokens'], rows[12]['tokens'][:76])
    np.testing.assert_array_equal(tebur['targets'], rows[12]['targets'][:76])
    self.assertEqual(int((tebur['targets'] != 0).sum()), 76 - 52)

  def test_a_piece_straddling_the_boundary_counts_as_the_body(self):
    fact = FACTS.taught[0]
    r = facts.render(fact, 'python', [])
    prompt, body = knowledge.split_encode(Merging(), r.signature, r.body)
    self.assertEqual(prompt + body, Merging().encode(r.signature + r.body))
    self.assertEqual(body[0], 300)  # the piece holds the signature's last character
    self.assertEqual(Bytes().encode(r.signature)[:-1], prompt)

  def test_planted_rows_are_the_primary_rows_moved(self):
    maps = _clones(260)
    rows, layout = knowledge.rows(Bytes(), FACTS, ['python', CLONE, SCRAMBLED], maps, 512, 780,
                                  BOS, EOS)
    self.assertEqual(layout.languages, ('python', CLONE, SCRAMBLED))
    clone_map = maps[CLONE][1]
    for i in range(4):
      for half in ('taught_rows', 'untaught_rows'):
        py = rows[getattr(layout, half)['python'][i]]
        cl = rows[getattr(layout, half)[CLONE][i]]
        sc = rows[getattr(layout, half)[SCRAMBLED][i]]
        np.testing.assert_array_equal(cl['tokens'], clone_map[py['tokens']])
        np.testing.assert_array_equal(cl['targets'], clone_map[py['targets']])
        # Scrambled: the same positions scored, the document's tokens shuffled in its own ids.
        np.testing.assert_array_equal(sc['targets'] != 0, py['targets'] != 0)
        self.assertEqual(sc['tokens'][0], maps[SCRAMBLED][1][BOS])
        self.assertFalse(np.array_equal(sc['tokens'], maps[SCRAMBLED][1][py['tokens']]))
        lo = 260 * 2
        self.assertTrue(((sc['tokens'] >= lo) & (sc['tokens'] < lo + 260)).all())
    # A model vocabulary without the scrambled copy's block leaves it out.
    _, layout = knowledge.rows(Bytes(), FACTS, ['python', CLONE, SCRAMBLED], maps, 512, 520,
                               BOS, EOS)
    self.assertEqual(layout.languages, ('python', CLONE))

  def test_the_manifest_reader(self):
    self.assertIsNone(knowledge.from_manifest({'languages': {}}))
    recorded = json.loads(json.dumps(FACTS.to_json()))
    for entry in ({**recorded, 'language': 'go', 'placement': 'train split of go'},
                  {'set': recorded, 'language': 'go'}):
      self.assertEqual(knowledge.from_manifest({'facts': entry}), (FACTS, 'go'))
    self.assertIsNone(knowledge.from_manifest({'facts': {'set': facts.generate(0, 1).to_json()}}))


class RowSumsTest(absltest.TestCase):

  def test_per_row_sums_equal_a_direct_computation(self):
    model, params = _model(260)
    rows, layout = knowledge.rows(Bytes(), FACTS, ['python', 'cpp'], {}, 96, 260, BOS, EOS)
    stacked = prober._stack(knowledge.pad(rows), 8)  # 16 rows: two batches of 8, scanned
    self.assertEqual(stacked['tokens'].shape[:2], (2, 8))
    run = jax.jit(prober._summed(functools.partial(knowledge.row_sums, model,
                                                   num_rows=layout.rows)))
    sums = jax.device_get(run(params, stacked))
    # Directly: log-softmax of one forward pass over the rows, unbatched, unscanned, summed by
    # hand over each row's body positions (the longest row alone: padding changes nothing).
    forward = jax.jit(lambda b: jax.nn.log_softmax(
        model_lib.forward(model, params, b).astype(jnp.float32)))
    logp = np.asarray(forward(_batch(rows)))
    longest = int(np.argmax([len(r['tokens']) for r in rows]))
    np.testing.assert_allclose(
        np.asarray(forward({k: v[None] for k, v in rows[longest].items()}))[0],
        logp[longest], atol=1e-4)
    for i, row in enumerate(rows):
      at = np.flatnonzero(row['targets'])
      want = -float(logp[i, at, row['targets'][at]].sum())
      self.assertAlmostEqual(float(sums['loss_R'][i]), want, delta=1e-4 * abs(want))
      self.assertEqual(sums['count_R'][i], len(at))
    readings = knowledge.summarise_knowledge(sums['loss_R'], sums['count_R'], layout)
    r = readings['cpp']
    want = [sums['loss_R'][j] / sums['count_R'][j] for j in layout.untaught_rows['cpp']]
    np.testing.assert_allclose(r.untaught_loss, want, rtol=1e-6)
    self.assertAlmostEqual(r.transferred, np.mean(r.untaught_loss) - np.mean(r.taught_loss))
    self.assertEqual(knowledge.summarise_knowledge(sums['loss_R'], sums['count_R'], layout, ['cpp']).keys(),
                     {'cpp'})


def _memorised():
  """A small model trained on one document only: taught fact 0 in Python, 60 Adam steps."""
  model, params = _model(260)
  doc = np.asarray([BOS] + Bytes().encode(facts.document(FACTS.taught[0], 'python')) + [EOS])
  n = len(doc) - 1
  batch = {'tokens': doc[None, :-1], 'targets': doc[None, 1:], 'positions': np.arange(n)[None],
           'segment_ids': np.ones((1, n), np.int32)}
  tx = optax.adam(3e-3)

  @jax.jit
  def step(p, state):
    def loss(p):
      return losses.cross_entropy(model_lib.forward(model, p, batch), batch['targets']).mean()
    value, grads = jax.value_and_grad(loss)(p)
    updates, state = tx.update(grads, state, p)
    return optax.apply_updates(p, updates), state, value

  state = tx.init(params)
  for _ in range(60):
    params, state, value = step(params, state)
  assert value < 0.2, value
  return model, params


class MemorisedTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model, cls.params = _memorised()

  def test_the_taught_fact_reads_lower_and_unseen_facts_do_not_separate(self):
    rows, layout = knowledge.rows(Bytes(), FACTS, ['python'], {}, 256, 260, BOS, EOS)
    r = _read(self.model, self.params, rows, layout)['python']
    d = r.per_fact
    self.assertLess(r.taught_loss[0], 0.2)  # memorised
    self.assertGreater(d[0], 3.0)  # its twin (other name, other constants) is not
    # Facts 1 and 2 (a string and a table fact, both halves never seen): about equal.
    for i in (1, 2):
      self.assertLess(abs(d[i]), 0.1 * d[0], (i, d))
    self.assertGreater(r.transferred, 0.5)

  def test_an_id_mapped_clone_reads_as_the_primary_and_a_scrambled_copy_does_not(self):
    """Grow the vocabulary by two planted blocks whose rows are copies of the primary's rows
    (tied embeddings): the model treats clone text exactly as Python (every token competes with
    its two copies: + log 3 on taught and untaught alike, which cancels). The scrambled copy's
    rows are copies too, but its text has no order left."""
    maps = _clones(260)
    model, _ = _model(780)
    emb = np.asarray(self.params['embed']['embedding'])
    grown = np.zeros((780, emb.shape[1]), emb.dtype)
    grown[:260] = emb
    for p, m in maps.values():
      grown[m[1:]] = emb[1:]
      grown[260 * (p.index + 1)] = emb[0]  # the block's unused first id, as padding's row
    params = dict(self.params, embed={'embedding': jnp.asarray(grown)})
    rows, layout = knowledge.rows(Bytes(), FACTS, ['python', CLONE, SCRAMBLED], maps, 256, 780,
                                  BOS, EOS)
    out = _read(model, params, rows, layout)
    py, clone, scrambled = out['python'], out[CLONE], out[SCRAMBLED]
    np.testing.assert_allclose(clone.per_fact, py.per_fact, atol=1e-3)
    self.assertGreater(clone.transferred, 0.5)
    # The scrambled copy here has its ids aligned with Python's by hand, the most it could ever
    # get; with the order gone only a memory of the taught document's tokens is left (about
    # half the clone's reading for this model). Trained on its own ids it has not even that.
    self.assertLess(scrambled.transferred, 0.6 * clone.transferred)
    # The same model without the planted blocks: the primary's reading is log 2 lower per token.
    alone = _read(self.model, self.params, *knowledge.rows(Bytes(), FACTS, ['python'], {}, 256,
                                                            260, BOS, EOS))['python']
    np.testing.assert_allclose(np.asarray(py.untaught_loss) - alone.untaught_loss,
                               np.log(3), atol=2e-3)  # three blocks compete (python + 2 copies)


class ProberTest(absltest.TestCase):

  def test_the_probe_pass_reads_the_facts_a_corpus_records(self):
    """A copy of the small corpus whose manifest records facts and a planted clone: the probe
    reads every language that renders them and the clone, the clone only where it is trained,
    and each reading matches knowledge.rows on the same tokenizer."""
    from babel_jax.data import manifest as manifest_lib, tokenizer
    from babel_jax.probes import stream
    from babel_jax.runtime import factory
    source, tok_dir = testing.small_corpus()
    corpus_dir = os.path.join(tempfile.mkdtemp(), 'corpus')
    shutil.copytree(source, corpus_dir, ignore=shutil.ignore_patterns('tokenizer'))
    manifest = manifest_lib.load(corpus_dir)
    fact_set = facts.generate(6, seed=1)
    clone = planted.Planted('clone', 'python', 0, 7)
    manifest['languages'][CLONE] = {**manifest['languages']['python'],
                                    'planted': dataclasses.asdict(clone)}
    manifest['facts'] = {**fact_set.to_json(), 'language': 'python'}  # manifest.py's layout
    io.write_json(os.path.join(corpus_dir, manifest_lib.MANIFEST), manifest)
    cfg = testing.corpus_config(**{
        'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
        'data.languages': f'python,cpp,javascript,{CLONE}', 'data.weights': '1,1,0,1',
        'model.vocab_size': 1024, 'model.max_len': 128, 'data.seq_len': 128,
        'probe.tokens_per_language': 256, 'probe.max_prompts_per_pair': 1,
        'probe.solution_loss': False, 'probe.deactivate': False})
    rt = factory.build_runtime(cfg)
    p = prober.Prober(cfg, tempfile.mkdtemp(), rt)
    self.assertEqual(p.knowledge_layout.languages, ('python', 'cpp', 'javascript', CLONE))
    params = rt.init_params(0)
    r = p.probe(params, 0, stream.trained_languages(cfg))
    self.assertEqual(sorted(r.knowledge), sorted(['python', 'cpp', 'javascript', CLONE]))
    self.assertIn('knowledge', r.seconds)
    self.assertEqual(ProbeResult.from_json(json.loads(json.dumps(r.to_json()))), r)
    self.assertNotIn(CLONE, p.probe(params, 0, ('python', 'cpp')).knowledge)  # not trained
    tok, _ = tokenizer.load(tok_dir, manifest)
    rows, layout = knowledge.rows(tok, fact_set, p.languages, p.planted, 128, 1024, BOS, EOS)
    self.assertEqual(layout, p.knowledge_layout)
    host = jax.device_get(params)
    direct = _read(rt.model, host, rows, layout)
    for lang, reading in r.knowledge.items():
      np.testing.assert_allclose(reading.taught_loss, direct[lang].taught_loss, rtol=2e-3)
      np.testing.assert_allclose(reading.untaught_loss, direct[lang].untaught_loss, rtol=2e-3)
    self.assertIn('knowledge [python=', stream._line(r, 1.0, 1.0, 0.0, 'python'))
    # With probe.knowledge off: no reading.
    cfg = config_lib.replace(cfg, **{'probe.knowledge': False})
    self.assertIsNone(prober.Prober(cfg, tempfile.mkdtemp(), rt)._knowledge)


def _knowledge(values_C, retention_C=None, k=3, spread=0.0):
  """A curves.Knowledge whose mean transferred reading is values_C (taught 1.0, untaught 1.0 +
  value, facts spread around it)."""
  values_C = np.asarray(values_C, np.float64)
  offsets = np.linspace(-spread, spread, k)
  taught = np.ones((len(values_C), k))
  untaught = taught + values_C[:, None] + offsets[None]
  kw = {}
  if retention_C is not None:
    kw = dict(primary_names=('a', 'b', 'c')[:k], primary_taught_CxJ=taught.copy(),
              primary_untaught_CxJ=taught + np.asarray(retention_C, np.float64)[:, None])
  return curves.Knowledge('go', 'python', ('a', 'b', 'c')[:k], taught, untaught, **kw)


class ControlsTest(absltest.TestCase):

  def test_end_and_peak_readings(self):
    steps = np.array([0, 10, 20, 30])
    r = controls.knowledge_reading(_knowledge([0.0, 0.5, 0.3, 0.2]), steps)
    self.assertAlmostEqual(r['knowledge_end'], 0.2)
    self.assertAlmostEqual(r['knowledge_peak'], 0.5)
    self.assertEqual(r['knowledge_peak_step'], 10)
    rising = controls.knowledge_reading(_knowledge([0.0, 0.1, 0.2, 0.3]), steps)
    self.assertAlmostEqual(rising['knowledge_end'], 0.3)
    self.assertIsNone(rising['knowledge_peak'])  # a maximum at the end is no peak
    self.assertEqual(controls.knowledge_reading(None, steps),
                     {'knowledge_end': None, 'knowledge_peak': None, 'knowledge_peak_step': None})
    self.assertIn('knowledge_end', controls.INSTRUMENTS)
    self.assertIn('knowledge_peak', controls.NUMBERS)

  def test_clone_above_scrambled_separates_and_validates(self):
    def run(name, values):
      return types.SimpleNamespace(
          run=name, steps=np.arange(4), tokens=np.arange(4) * 100.0, loss=np.ones(4),
          lens=None, transferring_neurons=np.ones(4), knowledge=_knowledge(values))
    fit = types.SimpleNamespace(p_star=None, problem='no peak', alpha=2.0, beta=3.0)
    a = types.SimpleNamespace(stages=types.SimpleNamespace(translation_end=None,
                                                           stabilization_start=None), eq1=fit)
    clone = [(run(f'c{s}', [0.0, 0.9 + s / 10, 0.7 + s / 20, 0.6 + s / 10]), a)
             for s in range(3)]
    scrambled = [(run(f's{s}', [0.0, 0.02 * s, -0.01 * s, 0.01 * (s - 1)]), a) for s in range(3)]
    t = controls.table({CLONE: clone, SCRAMBLED: scrambled}, None, [CLONE, SCRAMBLED])
    e = {x['instrument']: x for x in t['separation']}
    self.assertEqual(e['knowledge_end']['tests'], 2)  # the two knowledge instruments only
    for name in ('knowledge_end', 'knowledge_peak'):
      self.assertTrue(e[name]['separates'], e[name]['verdict'])
      self.assertTrue(e[name]['validated'])
    self.assertIn('validated at this scale: planted knowledge transferred to L',
                  ' '.join(controls.findings(t)))
    page = '\n'.join(study_report._controls_section(
        study_report.Study(languages=('python',), dynamics={}, run_reports={}, phases=[], seeds=3, controls=t)))
    self.assertIn('| knowledge_end | python_clone vs python_scrambled |', page)
    # The same readings the other way round: separated, but opposite to transfer.
    flipped = controls.table({CLONE: scrambled, SCRAMBLED: clone}, None, [CLONE, SCRAMBLED])
    e = {x['instrument']: x for x in flipped['separation']}
    self.assertTrue(e['knowledge_end']['separates'])
    self.assertFalse(e['knowledge_end']['validated'])


def _result(step, go, python):
  def reading(loss_pair):
    taught, untaught = loss_pair
    return KnowledgeReading(('daru', 'kemo'), tuple(taught), ('fisu', 'lonta'), tuple(untaught))
  return ProbeResult(step=step, loss={'python': 2.0, 'go': 3.0 - step / 100},
                     heldout_tokens={}, neurons=Neurons({}, {}), lape=None,
                     knowledge={'go': reading(go), 'python': reading(python)})


class CurvesTest(absltest.TestCase):

  def test_knowledge_loads_from_probe_json(self):
    run = RunDir(tempfile.mkdtemp())
    cfg = testing.config(**{'data.languages': 'python,go', 'data.weights': '0,1'})
    io.write_json(run.config_path, cfg.to_dict())
    go = [([2.0, 2.2], [2.5, 2.3]), ([1.5, 1.7], [2.5, 2.3]), ([1.9, 2.1], [2.4, 2.2])]
    py = [([0.5, 0.7], [2.5, 2.7]), ([0.9, 1.1], [2.5, 2.7]), ([1.2, 1.4], [2.5, 2.7])]
    for i, (g, p) in enumerate(zip(go, py)):
      result = _result(10 * i, g, p)
      self.assertEqual(ProbeResult.from_json(json.loads(json.dumps(result.to_json()))), result)
      result_lib.save(run, result)
    c = curves.load(run)
    k = c.knowledge
    self.assertEqual((k.language, k.primary, k.names), ('go', 'python', ('daru', 'kemo')))
    np.testing.assert_allclose(k.taught_CxJ, [x[0] for x in go])
    np.testing.assert_allclose(k.transferred_C, [0.3, 0.8, 0.3])
    np.testing.assert_allclose(k.transferred_CxJ[1], [1.0, 0.6])
    np.testing.assert_allclose(k.retention_C, [2.0, 1.6, 1.3])
    self.assertEqual(c.performance.source, 'loss')  # 'auto' never takes knowledge
    named = curves.load(run, performance='knowledge')
    self.assertEqual(named.performance.source, 'knowledge')
    np.testing.assert_allclose(named.performance.values, [0.3, 0.8, 0.3])
    # The per-run report plots it and says what it read.
    summary = run_report.write(run, analysis.Settings(smooth_window=1))
    self.assertEqual(summary['knowledge']['peak_step'], 10)
    self.assertTrue(os.path.exists(os.path.join(run.report_dir, 'knowledge.png')))
    with open(os.path.join(run.report_dir, 'index.md')) as f:
      self.assertIn('transferred to go +0.300 at the first checkpoint', f.read())
    with open(os.path.join(run.report_dir, 'probes.csv')) as f:
      self.assertIn('knowledge/go', f.readline())
    # A checkpoint without the reading: no knowledge curve, and naming it fails.
    os.remove(os.path.join(run.probes_dir, '10.json'))
    result_lib.save(run, dataclasses.replace(_result(10, go[1], py[1]), knowledge={}))
    self.assertIsNone(curves.load(run).knowledge)
    with self.assertRaisesRegex(ConfigError, "performance='knowledge'"):
      curves.load(run, performance='knowledge')


def _course(t_ExC, r_ExC=None, steps=None):
  t_ExC = np.asarray(t_ExC, np.float64)
  steps = np.arange(t_ExC.shape[1]) * 10 if steps is None else steps
  return analysis.knowledge_course('go', steps, t_ExC, r_ExC, 'python')


class RiseAndFallTest(absltest.TestCase):

  def test_an_interior_peak_rises_and_falls(self):
    base = np.array([0.0, 0.4, 0.8, 0.5, 0.2])
    t = base + np.array([[0.0], [0.05], [-0.04]]) + np.array([[0, .02, -.03, .01, 0],
                                                                [.01, -.02, .02, 0, .01],
                                                                [0, .01, .01, -.02, 0]])
    c = _course(t)
    self.assertTrue(c['rise_and_fall'])
    self.assertEqual(c['peak_step'], 20)
    self.assertEqual(c['seed_peak_steps'], [20, 20, 20])
    self.assertGreater(c['rise']['low'], 0)
    self.assertGreater(c['fall']['low'], 0)
    self.assertIn('both exclude 0, a rise then a fall', c['sentence'])
    self.assertIn(f'rise (peak - first) {c["rise"]["mean"]:.3f} [', c['sentence'])
    # (b) The primary's retention barely moves: L falls faster, a separation.
    r = np.array([[2.0, 1.95, 1.9, 1.88, 1.85]] * 3) + np.array([[0.0], [0.02], [0.01]])
    r[1, 4] -= 0.03
    sep = _course(t, r)
    self.assertTrue(sep['separation'])
    self.assertGreater(sep['faster_than_retention']['low'], 0)
    self.assertIn('falls faster than python\'s retention, a separation rather than plain '
                  'forgetting', sep['separation_sentence'])
    # ... and when the primary forgets as fast, it is plain forgetting: not seen.
    forget = _course(t, t + 1.0 + np.array([[0.01], [0.0], [-0.01]]) * np.arange(5))
    self.assertFalse(forget['separation'])
    self.assertIn('not seen at this scale', forget['separation_sentence'])

  def test_a_monotone_curve_has_no_peak(self):
    t = np.array([[0.0, 0.2, 0.4, 0.5, 0.6], [0.0, 0.25, 0.35, 0.55, 0.65],
                  [0.0, 0.15, 0.4, 0.45, 0.7]])
    c = _course(t, t + 1.0)
    self.assertFalse(c['rise_and_fall'])
    self.assertEqual(c['peak_step'], 40)
    self.assertIn('no peak, the maximum is at the last checkpoint (an end-of-run maximum is '
                  'not a peak)', c['sentence'])
    self.assertFalse(c['separation'])
    self.assertIn('no peak before the last checkpoint', c['separation_sentence'])

  def test_noise_only_is_not_seen(self):
    # Flat curves with noise: the mean curve has an interior maximum, but read at the other
    # seeds' peak the rise and fall intervals cross 0.
    t = np.array([[0.10, 0.13, 0.08, 0.12, 0.09, 0.11],
                  [0.12, 0.08, 0.13, 0.09, 0.11, 0.10],
                  [0.09, 0.12, 0.10, 0.11, 0.13, 0.08]])
    c = _course(t, t + 1.0)
    peak = int(np.argmax(t.mean(0)))
    self.assertTrue(0 < peak < 5)  # an interior maximum of the mean exists ...
    self.assertFalse(c['rise_and_fall'])  # ... and is no evidence
    self.assertTrue(c['rise']['low'] < 0 or c['fall']['low'] < 0)
    self.assertIn('include 0, so a rise then a fall is not seen at this scale', c['sentence'])
    self.assertFalse(c['separation'])
    # Each seed choosing its own peak would have "seen" it: max - ends > 0 for every seed.
    own = t.max(1)
    self.assertTrue(((own - t[:, 0]) > 0).all() and ((own - t[:, -1]) > 0).all())

  def test_one_seed_says_so(self):
    c = _course([[0.0, 0.5, 0.1]])
    self.assertFalse(c['rise_and_fall'])
    self.assertIn('one seed gives no interval', c['sentence'])
    self.assertIn('(n=1)', c['sentence'])
    short = _course([[0.0, 0.5]])
    self.assertIn('2 checkpoints; a rise then a fall needs at least 3', short['sentence'])
    self.assertIn('no retention reading', _course([[0.0, 0.5, 0.1], [0.0, 0.4, 0.2]])[
        'separation_sentence'])

  def test_the_study_report_section_and_plot(self):
    def seed(values, retention):
      c = types.SimpleNamespace(steps=np.arange(5) * 10, knowledge=_knowledge(
          values, retention, spread=0.1))
      return c, types.SimpleNamespace(eq1_vs_lens=None)
    rng = np.random.default_rng(0)
    dyn = {CLONE: [seed(np.array([0.0, 0.4, 0.8, 0.5, 0.2]) + rng.normal(0, 0.02, 5),
                        np.array([2.0, 1.98, 1.96, 1.94, 1.92]) + rng.normal(0, 0.01, 5))
                   for _ in range(3)],
           'go': [seed(np.array([0.0, 0.02, 0.01, 0.0, 0.01]) + rng.normal(0, 0.05, 5), None)
                  for _ in range(3)]}
    study = study_report.Study(languages=('python', 'go'), dynamics=dyn, run_reports={},
                               phases=[], seeds=3)
    courses = study_report.knowledge_courses(study)
    self.assertTrue(courses[CLONE]['rise_and_fall'])
    self.assertTrue(courses[CLONE]['separation'])
    self.assertFalse(courses['go']['rise_and_fall'])
    self.assertLen(courses[CLONE]['transferred'], 5)
    # Over facts: the 3 facts' last readings (seeds averaged) are the samples, spread +-0.1.
    over_facts = courses[CLONE]['last_over_facts']
    self.assertEqual(over_facts['n'], 3)
    self.assertAlmostEqual(over_facts['mean'], courses[CLONE]['transferred'][-1]['mean'])
    self.assertAlmostEqual(over_facts['sd'], 0.1)
    self.assertIsNone(courses['go']['retention'])
    page = '\n'.join(study_report._knowledge_section(study, courses))
    self.assertIn('## Planted knowledge', page)
    self.assertIn('| python_clone | clone | 3 | 3 |', page)
    self.assertIn('| last, over facts |', page)
    self.assertIn('a rise then a fall.', page)
    self.assertIn('go: no retention reading of python', page)
    findings = '\n'.join(study_report._findings(study))
    self.assertIn('- Planted knowledge over continual training: python_clone: knowledge '
                  'transferred', findings)
    out = tempfile.mkdtemp()
    plt = study_report.plots.pyplot()
    study_report.plots.save_figure(study_report._knowledge_plot(plt, courses), out,
                                   'knowledge.png')
    self.assertTrue(os.path.exists(os.path.join(out, 'knowledge.png')))
    json.dumps(courses)  # knowledge.json is plain JSON


if __name__ == '__main__':
  absltest.main()
