"""TransformerLens' side of `launch/hf_bench.sh`: the same two probe passes, timed in PyTorch.

Runs in the torch virtualenv (.venv-hf), never imports babel_jax. On the model directory and the
token batch that babel_jax.bench.hf_bench wrote: (lens) the residual stream after every block at
each row's last position through the final norm and unembedding, top-1 and two ids'
probabilities; (neurons) every MLP's activations after the nonlinearity counted as active (> 0)
per language, with the per-language loss. TransformerLens 4 removed HookedTransformer; its
successor, TransformerBridge with run_with_cache, is what is timed (CPU, float32, eager).
"""

import argparse
import json
import time

import numpy as np
import tokenizers
import torch
import transformers
from transformer_lens.model_bridge import TransformerBridge


def _median_s(fn, reps: int) -> float:
  fn()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return sorted(times)[len(times) // 2]


def make_random(path: str) -> None:
  """A pythia-160m-shaped GPT-NeoX with random weights (seed 0), and a byte-level tokenizer."""
  torch.manual_seed(0)
  cfg = transformers.GPTNeoXConfig(
      vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
      intermediate_size=3072, max_position_embeddings=2048, rotary_pct=0.25,
      rotary_emb_base=10000, use_parallel_residual=True, hidden_act='gelu', layer_norm_eps=1e-5,
      tie_word_embeddings=False)
  transformers.GPTNeoXForCausalLM(cfg).save_pretrained(path)
  tok = tokenizers.Tokenizer(tokenizers.models.BPE())
  tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.train_from_iterator(['def f(x):\n    return x\n'] * 10, tokenizers.trainers.BpeTrainer(
      vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
  tok.save(f'{path}/tokenizer.json')


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--hf', required=True)
  p.add_argument('--make-random', action='store_true', help='write the random model to --hf')
  p.add_argument('--batch', help='npz with tokens, lang_ids [B, L]')
  p.add_argument('--reps', type=int, default=3)
  p.add_argument('--out')
  a = p.parse_args()
  if a.make_random:
    make_random(a.hf)
    return
  torch.set_grad_enabled(False)
  data = np.load(a.batch)
  tokens = torch.tensor(data['tokens'], dtype=torch.long)
  langs = torch.nn.functional.one_hot(torch.tensor(data['lang_ids'], dtype=torch.long)).float()
  t = time.perf_counter()
  model = transformers.AutoModelForCausalLM.from_pretrained(a.hf, dtype=torch.float32,
                                                            attn_implementation='eager')
  tok = transformers.PreTrainedTokenizerFast(tokenizer_file=f'{a.hf}/tokenizer.json')
  bridge = TransformerBridge.boot_transformers(a.hf, hf_model=model, tokenizer=tok)
  load_s = time.perf_counter() - t
  n = bridge.cfg.n_layers
  b, length = tokens.shape
  ids = torch.arange(b)

  def lens():
    _, cache = bridge.run_with_cache(
        tokens, names_filter=lambda name: name.endswith('hook_resid_post'))
    resid_NxBxD = torch.stack([cache[f'blocks.{i}.hook_resid_post'][:, -1] for i in range(n)])
    logits = bridge.unembed(bridge.ln_final(resid_NxBxD))
    logz = torch.logsumexp(logits, -1)
    top = logits.argmax(-1)
    return top, torch.exp(logits[:, ids, ids] - logz), torch.exp(logits[:, ids, ids + 1] - logz)

  def neurons():
    logits, cache = bridge.run_with_cache(
        tokens, names_filter=lambda name: name.endswith('mlp.hook_post'))
    active = torch.stack([(cache[f'blocks.{i}.mlp.hook_post'] > 0).float() for i in range(n)])
    counts_NxFxK = torch.einsum('nblf,blk->nfk', active, langs)
    xent = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                                             reduction='none').view(b, length - 1)
    return counts_NxFxK, torch.einsum('bl,blk->k', xent, langs[:, :-1])

  t_lens, t_neurons = _median_s(lens, a.reps), _median_s(neurons, a.reps)
  out = {'side': 'transformer_lens', 'load_s': load_s, 'lens_s': t_lens, 'neurons_s': t_neurons,
         'tokens': b * length, 'torch_threads': torch.get_num_threads(),
         'versions': {'torch': torch.__version__, 'transformers': transformers.__version__}}
  with open(a.out, 'w') as f:
    json.dump(out, f, indent=1)
  print(json.dumps(out))


if __name__ == '__main__':
  main()
