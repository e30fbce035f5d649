"""A tokenizer.json beyond training: `--mode eval` sampling, the solution loss, the probe set's
identifier pairs on a byte-level vocabulary, planted languages, and a tokenizer larger than the
model, on models imported from the golden Hugging Face files.

Sampling and the solution loss use the golden GPT-2 tokenizer with '!' and '<|endoftext|>'
swapped, so that id 0 is '!' (a real text token, as in published GPT-2) and EOS is not 0.
"""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import shutil
import tempfile
from unittest import mock

import jax
import numpy as np
import safetensors.numpy
from absl.testing import absltest

from babel_jax import config as config_lib
from babel_jax import model as model_lib
from babel_jax.data import batch as batch_lib
from babel_jax.data import manifest as manifest_lib, pipeline
from babel_jax.data import tokenizer as tok_lib
from babel_jax.errors import ConfigError
from babel_jax.evaluation import evaluate, sandbox, solution_loss, validate
from babel_jax.evaluation.languages import LANGUAGES, truncate
from babel_jax.probes import probe_set
from babel_jax.runtime import hf_checkpoints as hfc
from babel_jax.train import losses
from tests.hf_import_test import restored
from tests.hf_test import GOLDEN
from tests.hf_tokenizer_test import GPT2_JSON


def bang_is_zero_json() -> str:
  """The golden GPT-2 tokenizer.json with '!' as id 0 and '<|endoftext|>' as id 1."""
  with open(GPT2_JSON) as f:
    d = json.load(f)
  vocab = d['model']['vocab']
  vocab['!'], vocab['<|endoftext|>'] = 0, 1
  for t in d['added_tokens']:
    if t['content'] == '<|endoftext|>':
      t['id'] = 1
  path = os.path.join(tempfile.mkdtemp(), 'tokenizer.json')
  with open(path, 'w') as f:
    json.dump(d, f)
  return path


def direct_logits(model, params, ids: list[int], width: int = 64) -> np.ndarray:
  """[len(ids), V]: the model on one row, right-padded to `width` (a causal model's logits at
  the row's positions do not depend on what follows)."""
  n = len(ids)
  tokens = np.zeros((1, width), np.int32)
  tokens[0, :n] = ids
  seg = (np.arange(width) < n).astype(np.int32)[None]
  batch = {'tokens': tokens, 'positions': np.arange(width, dtype=np.int32)[None] * seg,
           'segment_ids': seg}
  return np.asarray(_forward(model, params, batch)[0, :n])


_forward = jax.jit(model_lib.forward, static_argnums=0)


class EvalWithTokenizerJsonTest(absltest.TestCase):

  def test_eval_mode_samples_what_greedy_decoding_of_the_model_gives(self):
    # The golden GPT-2 with id 0's (tied) embedding twice that of id 313, which its greedy
    # decoding of these prompts emits: now id 0 ('!') is the greedy choice instead.
    source = os.path.join(tempfile.mkdtemp(), 'gpt2')
    shutil.copytree(os.path.join(GOLDEN, 'gpt2'), source)
    weights = os.path.join(source, 'model.safetensors')
    tensors = safetensors.numpy.load_file(weights)
    tensors['transformer.wte.weight'][0] = 2 * tensors['transformer.wte.weight'][313]
    safetensors.numpy.save_file(tensors, weights, metadata={'format': 'pt'})
    run = tempfile.mkdtemp()
    hfc.import_run(config_lib.default_config(), run, source)
    src_cfg, params = restored(run, 0)
    params = jax.device_get(params)
    corpus_dir = testing.small_corpus()[0]
    tok_dir = os.path.join(tempfile.mkdtemp(), 'tok')
    tok_lib.use_hf(bang_is_zero_json(), 384, corpus_dir, tok_dir)
    tok = tok_lib.load(tok_dir, manifest_lib.load(corpus_dir))[0]
    self.assertEqual((tok.encode('!'), tok.bos_id, tok.eos_id), ([0], 1, 1))
    real = evaluate.load_records('python', 1)[0]  # hundreds of tokens: past max_len 64
    records = [dict(real, task_id='short/0', prompt='def f(x):\n    # x!\n    return x!'),
               dict(real, task_id='short/1', prompt='print("hi!!")\n\ndef g(y):\n    y = '),
               real]
    cfg = config_lib.replace(src_cfg, **{
        'data.source': 'corpus', 'data.corpus_dir': corpus_dir, 'data.tokenizer_dir': tok_dir,
        'data.languages': testing.SMALL_LANGUAGES, 'eval.languages': 'python',
        'eval.problems': 3, 'eval.max_new_tokens': 8, 'eval.samples': 1,
        'eval.temperature': 0.0, 'eval.k': '1', 'eval.workers': 2})
    with mock.patch.object(evaluate, 'load_records', lambda lang, problems=0: records):
      self.assertEqual(evaluate.walk(cfg, run), [0])
    out = os.path.join(run, 'eval', '0')
    with open(os.path.join(out, 'completions.jsonl')) as f:
      got = {c['task_id']: c for c in map(json.loads, f)}
    with open(os.path.join(out, 'results.json')) as f:
      results = json.load(f)['results']['python']
    self.assertEqual(sorted(got), ['short/0', 'short/1'])
    self.assertEqual(results['per_problem'][real['task_id']]['outcomes'], ['prompt_too_long'])
    self.assertEqual(results['problems'], 3)
    model = model_lib.build_model(cfg.model)
    emitted = []
    for rec in records[:2]:
      ids = [tok.bos_id, *tok.encode(rec['prompt'])]
      self.assertIn(0, ids)  # '!' in the prompt is id 0, not padding
      self.assertEqual(tok.decode(ids[1:]), rec['prompt'])
      new = []
      for _ in range(8):  # greedy over the whole vocabulary, id 0 included, until EOS
        nxt = int(np.argmax(direct_logits(model, params, ids + new)[-1]))
        if nxt == tok.eos_id:
          break
        new.append(nxt)
      emitted += new
      c = got[rec['task_id']]
      self.assertEqual(c['completion'], truncate(tok.decode(new), LANGUAGES['python'].stop))
      self.assertIn(c['outcome'], sandbox.OUTCOMES)
      self.assertEqual(results['per_problem'][rec['task_id']]['outcomes'], [c['outcome']])
    self.assertIn(0, emitted)  # sampling may emit id 0 when it is a token


class SolutionLossWithTokenizerJsonTest(absltest.TestCase):

  def test_solution_loss_is_the_models_body_loss_with_id_zero_counted(self):
    run = tempfile.mkdtemp()
    hfc.import_run(config_lib.default_config(), run, os.path.join(GOLDEN, 'neox'))
    cfg, params = restored(run, 0)
    params = jax.device_get(params)
    # Rotary positions: the imported weights read sequences past the source's 64 positions.
    model = model_lib.build_model(config_lib.replace(cfg, **{'model.max_len': 1024}).model)
    tok = tok_lib.HFTokenizer(bang_is_zero_json())
    rows, kept = solution_loss.rows(tok, ['python'], 1024, tok.bos_id)
    length = max(len(r['tokens']) for r in rows)
    stacked = {k: np.stack([np.pad(r[k], (0, length - len(r[k])),
                                   constant_values=batch_lib.fill_value(k)) for r in rows])
               for k in rows[0]}
    loss_sums = jax.jit(losses.loss_sums, static_argnums=(0, 3))
    sums = jax.device_get(loss_sums(model, params, stacked, 1))
    got = solution_loss.summarise_solution_loss(sums['lang_loss_sum'], sums['lang_count'],
                                                ['python'], kept)['python']
    # Directly: [BOS] + prompt + body, the body's tokens scored given everything before them.
    records = validate.records_by_task('python')
    loss_sum, count, zeros, problems = 0.0, 0, 0, 0
    for task, kind, body in validate.solutions('python'):
      if kind != 'correct':
        continue
      prompt = [tok.bos_id, *tok.encode(records[task]['prompt'])]
      body_ids = tok.encode(body)
      seq = prompt + body_ids
      if len(seq) > 1025:
        continue
      logp = np.asarray(jax.nn.log_softmax(direct_logits(model, params, seq[:-1], 1024)))
      start = len(prompt) - 1
      loss_sum -= float(logp[np.arange(start, start + len(body_ids)), body_ids].sum())
      count += len(body_ids)
      zeros += body_ids.count(0)
      problems += 1
    self.assertGreater(zeros, 0)  # bodies with '!' (id 0): '!=' in Python
    self.assertEqual((got['problems'], got['tokens']), (problems, count))
    self.assertAlmostEqual(got['loss'], loss_sum / count, places=4)
    # Without the mask those id-0 targets would read as 'no target'.
    plain = {k: v for k, v in stacked.items() if k != batch_lib.TARGET_MASK}
    self.assertEqual(int(batch_lib.target_mask(plain).sum()), count - zeros)


class ProbeSetOnByteLevelVocabularyTest(absltest.TestCase):

  def test_identifier_pairs_are_checked_against_a_tokenizer_json(self):
    tok = tok_lib.HFTokenizer(GPT2_JSON)
    langs = ['php', 'csharp', 'go', 'cpp', 'java', 'javascript']
    ps = probe_set.build_probe_set(tok, langs, 64)
    self.assertGreater(len(ps.ids), 800)
    for i in range(len(ps.ids)):
      t, p = tok.decode([ps.target_first_P[i]]), tok.decode([ps.primary_first_P[i]])
      self.assertNotEqual(t, p)
      self.assertTrue(t.strip() and p.strip(), ps.ids[i])  # never a bare-space token
    by_id = dict(zip(ps.ids, range(len(ps.ids))))
    # '$n = ' + strlen / len: this vocabulary has no 'Ġst' or 'Ġle' piece, so ' strlen' is read
    # 'Ġ' 'st' ...: the space ends the prompt and the identifiers start after it.
    i = by_id['php/strlen#0']
    self.assertEqual((tok.decode([ps.target_first_P[i]]), tok.decode([ps.primary_first_P[i]])),
                     ('st', 'le'))
    self.assertEqual(ps.tokens_PxL[i, ps.last_P[i]], tok.encode(' ')[0])
    # ' count' is 'Ġc' 'ount' but ' len' is 'Ġ' 'le' 'n': no shared prompt, so it is skipped.
    self.assertNotIn('php/count#0', by_id)
    self.assertIn("php/count#0: 'count' and 'len' split the prompt's trailing space "
                  'differently in this vocabulary', ps.problems)
    # '.' + ToUpper / upper: no space, first tokens 'T' / 'up'.
    i = by_id['csharp/ToUpper#0']
    self.assertEqual(tok.decode([ps.target_first_P[i]]), 'T')
    bad = os.path.join(tempfile.mkdtemp(), 'set.json')
    with open(bad, 'w') as f:
      json.dump({'languages': {'php': [
          {'id': 'php/lens', 'target': 'lens', 'python': 'len', 'prompts': ['$n = ']}]}}, f)
    with self.assertRaisesRegex(ConfigError, r"no usable prompts for languages \['php'\].*"
                                r"'lens' and 'len' start with the same token"):
      probe_set.build_probe_set(tok, ['php'], 64, bad)

  def test_planted_languages_need_a_sentencepiece_vocabulary(self):
    manifest = {'languages': {'python': {}, 'python_clone': {'planted': {
        'kind': 'clone', 'of': 'python', 'index': 0, 'seed': 0}}}}
    tok = tok_lib.HFTokenizer(GPT2_JSON)
    with self.assertRaisesRegex(ConfigError, r"planted languages \['python_clone'\].*need a "
                                'sentencepiece tokenizer'):
      pipeline.planted_maps(manifest, tok, ['python', 'python_clone'])
    self.assertEqual(pipeline.planted_maps(manifest, tok, ['python']), {})

  def test_tokenizer_larger_than_the_model_is_one_line(self):
    r = testing.run_main(tempfile.mkdtemp(), f'--config.tokenizer.hf_json={GPT2_JSON}',
                         '--config.model.vocab_size=300', mode='tokenizer')
    self.assertNotEqual(r.returncode, 0)
    self.assertIn('has 384 tokens, more than model.vocab_size=300', r.stderr)
    self.assertNotIn('Traceback', r.stderr)
    self.assertLen([line for line in r.stderr.splitlines() if line.strip()], 1, r.stderr)


if __name__ == '__main__':
  absltest.main()
