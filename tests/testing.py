"""Shared test helpers. Importing this first gives every test 8 fake CPU devices."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str = 'tiny'):
  """Loads configs/<name>.py the way --config does."""
  path = os.path.join(REPO, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'configs_{name}', path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


def main_command(workdir: str, *overrides: str, config: str = 'tiny', mode: str = 'train'):
  return [sys.executable, '-m', 'babel_jax.main', f'--config={REPO}/configs/{config}.py',
          f'--workdir={workdir}', f'--mode={mode}', *overrides]


def run_main(workdir: str, *overrides: str, **kw) -> subprocess.CompletedProcess:
  return subprocess.run(main_command(workdir, *overrides, **kw), cwd=REPO, capture_output=True,
                        text=True, timeout=300)
