"""Writes the Hugging Face golden files that tests/hf_test.py imports with no torch installed.

Run through `bash launch/make_hf_golden.sh` (its own virtualenv with torch and transformers).
For each family a tiny random model (weights and norm gains drawn wide, so that every mapping
matters), saved with `save_pretrained` (safetensors; llama sharded, llama_bf16 in bfloat16), a
byte-level BPE tokenizer.json, and golden.npz: input ids, float32 logits and the residual
stream after every layer (pre final norm, read by forward hooks). `--check DIR FAMILY` loads an
exported directory with transformers and compares its logits to the family's golden ones.
"""

import argparse
import json
import os
import sys

import numpy as np
import tokenizers
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 384
TEXTS = ['def add(a, b):\n    return a + b\n', '<?php\nfunction add($a, $b) {\n  return $a + $b;\n}\n']


def tokenizer(path: str) -> tokenizers.Tokenizer:
  """A byte-level BPE of VOCAB pieces trained on a little Python and PHP, as GPT-2's kind."""
  tok = tokenizers.Tokenizer(tokenizers.models.BPE())
  tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = tokenizers.decoders.ByteLevel()
  trainer = tokenizers.trainers.BpeTrainer(
      vocab_size=VOCAB, special_tokens=['<|endoftext|>'],
      initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
  corpus = [open(os.path.join(os.path.dirname(os.__file__), n)).read()
            for n in ('functools.py', 'textwrap.py')] + TEXTS * 50
  tok.train_from_iterator(corpus, trainer)
  tok.save(path)
  return tok


def configs():
  common = dict(vocab_size=VOCAB, max_position_embeddings=64)
  return {
      'gpt2': transformers.GPT2Config(
          vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
          activation_function='gelu_new', layer_norm_epsilon=1e-5, resid_pdrop=0.0,
          embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True),
      'neox': transformers.GPTNeoXConfig(
          hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
          rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=True, hidden_act='gelu',
          layer_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=True, **common),
      'llama': transformers.LlamaConfig(
          hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False,
          mlp_bias=False, tie_word_embeddings=False, **common),
  }


def randomise(model, seed: int) -> None:
  """Wide random weights; norm gains around 1 and biases around 0, all distinct."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=g)
      if 'norm' in name or 'ln' in name:
        p.copy_(1.0 + 0.2 * noise if name.endswith('weight') else 0.2 * noise)
      else:
        p.copy_(0.15 * noise)


def layers(model):
  for attr in ('transformer.h', 'gpt_neox.layers', 'model.layers'):
    obj = model
    try:
      for part in attr.split('.'):
        obj = getattr(obj, part)
      return list(obj)
    except AttributeError:
      continue
  raise ValueError(f'no layers in {type(model).__name__}')


def run(model, ids: np.ndarray):
  """(logits, residual stream after each layer) in float32, for ids [B, L]."""
  resid = []
  hooks = [layer.register_forward_hook(
      lambda _m, _i, out: resid.append((out[0] if isinstance(out, tuple) else out).float()))
      for layer in layers(model)]
  with torch.no_grad():
    logits = model(torch.tensor(ids)).logits.float()
  for h in hooks:
    h.remove()
  return logits.numpy(), torch.stack(resid).numpy()


def make(family: str, cfg, tok, ids: np.ndarray) -> None:
  out = os.path.join(HERE, family)
  os.makedirs(out, exist_ok=True)
  base = family.split('_')[0]
  model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation='eager')
  randomise(model, seed=len(family))
  model.eval()
  if family.endswith('_bf16'):
    model = model.to(torch.bfloat16)
  model.save_pretrained(out, max_shard_size='100KB' if base == 'llama' and family == 'llama'
                        else '50GB')
  tok.save(os.path.join(out, 'tokenizer.json'))
  model = transformers.AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32,
                                                            attn_implementation='eager')
  logits, resid = run(model, ids)
  np.savez_compressed(os.path.join(out, 'golden.npz'), input_ids=ids, logits=logits,
                      resid=resid)
  print(f'{family}: {sum(p.numel() for p in model.parameters()):,} params, '
        f'{sorted(os.listdir(out))}')


def check(directory: str, family: str) -> int:
  """Loads an exported directory with transformers; its logits must match the golden ones."""
  golden = np.load(os.path.join(HERE, family, 'golden.npz'))
  model = transformers.AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32,
                                                            attn_implementation='eager')
  logits, _ = run(model, golden['input_ids'])
  err = float(np.abs(logits - golden['logits']).max())
  print(f'{directory} ({type(model).__name__}): max |logits - golden| = {err:.2e}')
  return 0 if err < 1e-4 else 1


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', nargs=2, metavar=('DIR', 'FAMILY'))
  args = parser.parse_args()
  if args.check:
    return check(*args.check)
  torch.manual_seed(0)
  tok = tokenizer(os.path.join(HERE, 'tokenizer.json'))
  enc = [tok.encode(t).ids for t in TEXTS]
  length = min(len(e) for e in enc)
  ids = np.array([e[:length] for e in enc], dtype=np.int64)
  cfgs = configs()
  for family in ('gpt2', 'neox', 'llama', 'llama_bf16'):
    make(family, cfgs[family.split('_')[0]], tok, ids)
  versions = {'torch': torch.__version__, 'transformers': transformers.__version__,
              'tokenizers': tokenizers.__version__, 'python': sys.version.split()[0]}
  with open(os.path.join(HERE, 'versions.json'), 'w') as f:
    json.dump(versions, f, indent=1)
  os.remove(os.path.join(HERE, 'tokenizer.json'))
  return 0


if __name__ == '__main__':
  sys.exit(main())
