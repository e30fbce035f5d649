"""Multi-host on one machine: 2 processes x 4 CPU devices (jax.distributed, gloo) train like 1 x 8."""

from tests import testing  # noqa: F401  (first: fake devices)

import os
import socket
import subprocess
import tempfile

import numpy as np
from absl.testing import absltest

from tests.train_test import losses


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict[str, str]:
  return {**os.environ, 'JAX_PLATFORMS': 'cpu',
          'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}


class MultiHostTest(absltest.TestCase):

  def test_two_hosts_match_one_and_resume_on_another_host_count(self):
    multi, single = tempfile.mkdtemp(), tempfile.mkdtemp()
    port = _free_port()
    procs = [subprocess.Popen(
        testing.main_command(multi, '--config.train.steps=6', f'--coordinator_address=localhost:{port}',
                             '--num_processes=2', f'--process_id={i}'),
        cwd=testing.REPO, env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
      self.assertEqual(p.returncode, 0, out[-3000:])
    one = subprocess.run(testing.main_command(single, '--config.train.steps=6'), cwd=testing.REPO,
                         env=_env(8), capture_output=True, text=True, timeout=300)
    self.assertEqual(one.returncode, 0, one.stderr[-3000:])
    np.testing.assert_allclose(losses(multi), losses(single), rtol=1e-5)
    data_dir = os.path.join(multi, 'checkpoints', '6', 'data')
    self.assertContainsSubset({'process_0-of-2.json', 'process_1-of-2.json'},
                              set(os.listdir(data_dir)))
    # The 2-host checkpoint resumes on 1 host: parameters restore; the data stream restarts.
    resumed = subprocess.run(testing.main_command(multi, '--config.train.steps=8'),
                             cwd=testing.REPO, env=_env(8), capture_output=True, text=True,
                             timeout=300)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertIn('no data state for 1 hosts', resumed.stdout + resumed.stderr)
    self.assertLen(losses(multi), 8)


if __name__ == '__main__':
  absltest.main()
