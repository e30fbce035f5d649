"""Launch scripts: the dry runs print the commands a TPU pod or GPU hosts would run."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest


def _dry(script, *args):
  out = subprocess.run(['bash', os.path.join(testing.REPO, 'launch', script), '--dry-run', *args],
                       capture_output=True, text=True, timeout=60)
  return out.returncode, out.stdout + out.stderr


def _apt_plan(eval_languages=None):
  """The apt packages launch/setup.sh would install on a machine without any eval toolchain: PATH
  holds only what the script itself runs."""
  bin_dir = tempfile.mkdtemp()
  for tool in ('bash', 'python3', 'ls', 'dirname', 'id', 'sha256sum', 'cut', 'cat'):
    os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
  env = {'PATH': bin_dir, 'BABEL_SETUP_DRY_RUN': '1', 'PYTHON': sys.executable}
  if eval_languages is not None:
    env['BABEL_EVAL_LANGUAGES'] = eval_languages
  out = subprocess.run([shutil.which('bash'), os.path.join(testing.REPO, 'launch', 'setup.sh')],
                       capture_output=True, text=True, timeout=60, env=env)
  line = [l for l in out.stdout.splitlines() if l.startswith('apt:')]
  assert out.returncode == 0 and line, out.stdout + out.stderr
  return set(line[0].split()[1:])


class LaunchTest(absltest.TestCase):

  def test_setup_installs_the_named_languages_toolchains_only(self):
    everything = _apt_plan()
    self.assertContainsSubset({'php-cli', 'golang-go', 'mono-mcs', 'mono-runtime', 'g++',
                               'openjdk-17-jdk-headless', 'nodejs', 'bubblewrap'}, everything)
    demo = _apt_plan('javascript cpp')
    self.assertContainsSubset({'g++', 'nodejs', 'bubblewrap'}, demo)
    self.assertNoCommonElements({'php-cli', 'golang-go', 'mono-mcs', 'mono-runtime'}, demo)
    self.assertContainsSubset({'php-cli', 'golang-go'}, _apt_plan('php go'))
    self.assertNoCommonElements({'g++', 'nodejs', 'mono-mcs'}, _apt_plan('php go'))

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
