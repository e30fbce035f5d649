"""Tokenizer: lossless on real code and on tricky whitespace, bound to its corpus."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import shutil
import tempfile

from absl.testing import absltest

from babel_jax.errors import TokenizerError
from babel_jax.data import manifest as manifest_lib, tokenizer
from babel_jax.data.batch import PAD_ID


class TokenizerTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.corpus_dir, cls.tok_dir = testing.small_corpus()
    cls.manifest = manifest_lib.load(cls.corpus_dir)
    cls.tok, cls.info = tokenizer.load(cls.tok_dir, cls.manifest)

  def test_round_trip_on_validation_files(self):
    checked = 0
    for lang in self.manifest['languages']:
      for text in manifest_lib.read_texts(self.corpus_dir, self.manifest, lang, 'validation'):
        self.assertEqual(self.tok.decode(self.tok.encode(text)), text)
        checked += 1
    self.assertGreater(checked, 5)
    self.assertEqual(self.info['roundtrip']['num_failures'], 0)
    self.assertEqual(self.info['roundtrip']['files'], checked)

  def test_whitespace_digits_and_rare_characters_survive(self):
    for text in ['def f(x):\n\tif x:\n        return  x  \r\n', '\n\n\n    \t \n',
                 ' leading space', 'trailing space ', 'x = 1234567890', 'caf\u00e9 \u6f22\u5b57 \U0001f600',
                 'the \u2581 marker \u2581\u2581 itself', '\u2581', '']:
      ids = self.tok.encode(text)
      self.assertEqual(self.tok.decode(ids), text, repr(text))
      self.assertNotIn(PAD_ID, ids)  # 0 must stay free: it means 'no target'.
    digits = [self.tok._sp.id_to_piece(i) for i in self.tok.encode('x = 1234567890')]
    self.assertEqual(digits[-10:], list('1234567890'))
    indent = [self.tok._sp.id_to_piece(i) for i in self.tok.encode('\n        return x\n')]
    self.assertTrue(any(set(p) == {'\u2581'} and len(p) >= 4 for p in indent), indent)

  def test_settings_and_token_counts_are_recorded(self):
    s = self.info['settings']
    self.assertEqual((s['model_type'], s['byte_fallback'], s['normalization_rule_name'],
                      s['split_digits'], s['add_dummy_prefix']), ('bpe', True, 'identity', True, False))
    self.assertEqual(self.info['corpus_hash'], self.manifest['content_hash'])
    self.assertEqual(self.tok.vocab_size, s['vocab_size'])
    for lang in self.manifest['languages']:
      texts = list(manifest_lib.read_texts(self.corpus_dir, self.manifest, lang, 'train'))
      self.assertEqual(self.info['tokens'][lang]['train'], sum(len(self.tok.encode(t)) for t in texts))

  def test_a_tokenizer_for_another_corpus_is_refused(self):
    other = dict(self.manifest, content_hash='0' * 64)
    with self.assertRaisesRegex(TokenizerError, 'trained on corpus'):
      tokenizer.load(self.tok_dir, other)
    with self.assertRaisesRegex(TokenizerError, 'no tokenizer'):
      tokenizer.load(tempfile.mkdtemp(), self.manifest)
    copy = os.path.join(tempfile.mkdtemp(), 'tok')
    shutil.copytree(self.tok_dir, copy)
    with open(os.path.join(copy, tokenizer.MODEL), 'ab') as f:
      f.write(b'tampered')
    with self.assertRaisesRegex(TokenizerError, 'does not match the hash'):
      tokenizer.load(copy, self.manifest)

  def test_retraining_reuses_or_refuses(self):
    cfg = testing.corpus_config()
    info = tokenizer.train(cfg.tokenizer, cfg.model.vocab_size, self.corpus_dir, self.tok_dir)
    self.assertEqual(info['model_sha256'], self.info['model_sha256'])
    with self.assertRaisesRegex(TokenizerError, 'other settings'):
      tokenizer.train(cfg.tokenizer, 1024, self.corpus_dir, self.tok_dir)
    with self.assertRaisesRegex(TokenizerError, 'raise tokenizer.vocab_size'):
      tokenizer.train(cfg.tokenizer, 200, self.corpus_dir, os.path.join(tempfile.mkdtemp(), 't'))
    with open(os.path.join(self.tok_dir, tokenizer.INFO)) as f:
      self.assertEqual(json.load(f)['model_sha256'], self.info['model_sha256'])


if __name__ == '__main__':
  absltest.main()
