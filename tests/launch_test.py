"""Launch scripts: the dry runs print the commands a TPU pod or GPU hosts would run."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import subprocess
import sys

from absl.testing import absltest


def _dry(script, *args):
  out = subprocess.run(['bash', os.path.join(testing.REPO, 'launch', script), '--dry-run', *args],
                       capture_output=True, text=True, timeout=60)
  return out.returncode, out.stdout + out.stderr


class LaunchTest(absltest.TestCase):

  def test_tpu_vm_lifecycle(self):
    rc, out = _dry('tpu_vm.sh', '--name', 'babel', '--zone', 'us-east5-a', '--project', 'p',
                   '--queued', 'all', '--', '--config', 'configs/gpt2_1p3b.py:v5p-64',
                   '--workdir', '/mnt/shared/run')
    self.assertEqual(rc, 0, out)
    self.assertIn('gcloud compute tpus queued-resources create babel --node-id babel', out)
    self.assertIn('--accelerator-type v5p-64', out)
    self.assertIn('tpu-vm scp', out)
    self.assertIn('launch/setup.sh\\ tpu', out)
    run_line = [l for l in out.splitlines() if 'babel_jax.main' in l][0]
    self.assertIn('--worker=all', run_line)
    self.assertIn('--distributed\\ --config\\ configs/gpt2_1p3b.py:v5p-64', run_line)
    for command in ('stop', 'delete', 'logs'):
      rc, out = _dry('tpu_vm.sh', '--name', 'babel', '--zone', 'z', command)
      self.assertEqual(rc, 0, out)
    self.assertIn('tpu-vm delete babel', _dry('tpu_vm.sh', '--name', 'babel', '--zone', 'z',
                                              'delete')[1])
    rc, out = _dry('tpu_vm.sh', '--zone', 'z', 'create')
    self.assertNotEqual(rc, 0)
    self.assertIn('--name', out)

  def test_gpu_hosts(self):
    rc, out = _dry('gpu.sh', '--hosts', 'h0,h1,h2', '--', '--config', 'configs/tiny.py',
                   '--workdir', '/nfs/run')
    self.assertEqual(rc, 0, out)
    lines = [l.replace('\\ ', ' ') for l in out.splitlines() if l.startswith('+ ssh')]
    self.assertLen(lines, 3)
    for i, line in enumerate(lines):
      self.assertIn(f'--coordinator_address=h0:12355 --num_processes=3 --process_id={i}', line)
    rc, out = _dry('gpu.sh', '--', '--config', 'configs/tiny.py', '--workdir', '/x')
    self.assertEqual(rc, 0, out)
    self.assertIn('babel_jax.main --config configs/tiny.py --workdir /x', out)

  def test_gpu_visit_runs_the_bench_then_the_study(self):
    rc, out = _dry('gpu_visit.sh', '--python', sys.executable, '--out', '/tmp/visit', '--',
                   '--config.data.corpus_dir=/data/corpus')
    self.assertEqual(rc, 0, out)
    lines = [l.replace('\\ ', ' ') for l in out.splitlines() if l.startswith('+ ')]
    self.assertIn('launch/gpu_bench.sh', lines[0])
    self.assertIn('--out /tmp/visit/bench', lines[0])
    self.assertIn('-m babel_jax.main --config configs/gpu_study.py --workdir /tmp/visit/study '
                  '--mode experiment --config.data.corpus_dir=/data/corpus', lines[1])


if __name__ == '__main__':
  absltest.main()
