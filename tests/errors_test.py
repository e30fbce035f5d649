"""Bad inputs and failures as a user meets them: one line naming the file, field or path, no
traceback (unless --verbosity), exit status 1, and what is left on disk afterwards.

The command line (a missing, broken or raising --config; a misspelled override), the corpus (a
truncated archive, every file filtered out), a run directory (nothing to probe, a damaged run
file, a checkpoint that cannot be restored), a disk that fills up during training (a real small
tmpfs, as root) and the resume once it has grown, Orbax's read-only notices, Ctrl-C.
"""

from tests import testing  # noqa: F401  (first: fake devices)

import contextlib
import errno
import io as io_lib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from absl import logging as absl_logging
from absl.testing import absltest
import numpy as np

from babel_jax import cli
from babel_jax.data import corpus
from babel_jax.errors import CheckpointError, CorpusError, RunError, SourceError
from babel_jax.probes import stream
from babel_jax.runtime import checkpoints as ckpt_lib
from babel_jax.runtime import factory
from babel_jax.runtime.rundir import RunDir
from babel_jax.train import loop
from babel_jax.train import metrics as metrics_lib
from babel_jax.train import state as state_lib
from tests.train_test import losses, tiny

SMALL_RUN = ('--config.mesh.num_devices=1', '--config.model.num_layers=1')
_STDLIB = os.path.dirname(json.__file__)  # a few real Python files to pack into archives


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'babel_jax.main', *args], cwd=testing.REPO,
                        capture_output=True, text=True, timeout=timeout)


def _tiny(**overrides):
  return tiny(**{'mesh.num_devices': 1, 'model.num_layers': 1, **overrides})


class OneLineMixin:

  def assertOneLine(self, out: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 1, stderr one 'error: ...' line holding every fragment, no traceback."""
    self.assertEqual(out.returncode, 1, out.stderr[-3000:])
    self.assertNotIn('Traceback', out.stdout + out.stderr)
    lines = out.stderr.splitlines()
    self.assertLen(lines, 1, out.stderr[-3000:])
    self.assertTrue(lines[0].startswith('error: '), lines[0])
    for fragment in fragments:
      self.assertIn(fragment, lines[0])
    return lines[0]


class CommandLineTest(OneLineMixin, absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.workdir = os.path.join(self.dir, 'run')

  def _config(self, text: str) -> str:
    path = os.path.join(self.dir, 'my_config.py')
    with open(path, 'w') as f:
      f.write(text)
    return path

  def test_missing_config_file(self):
    missing = os.path.join(self.dir, 'nope.py')
    out = _cli(f'--config={missing}', f'--workdir={self.workdir}', '--config.train.steps=3')
    self.assertOneLine(out, f'--config {missing}: no such file')
    self.assertFalse(os.path.exists(self.workdir))

  def test_config_with_a_syntax_error(self):
    path = self._config('def get_config(:\n  pass\n')
    self.assertOneLine(_cli(f'--config={path}', f'--workdir={self.workdir}'),
                       f'--config {path}:1: invalid syntax')

  def test_config_that_raises(self):
    path = self._config('def get_config():\n  x = 1\n  raise ValueError("no such preset")\n')
    self.assertOneLine(_cli(f'--config={path}', f'--workdir={self.workdir}'),
                       f'--config {path}:3: get_config() raised ValueError: no such preset')

  def test_misspelled_section_and_field(self):
    for override, field, hint in (('--config.modle.d_model=3', "'modle'", 'model'),
                                  ('--config.model.d_modle=3', "'d_modle'", 'd_model')):
      out = _cli('--config=configs/tiny.py', override, f'--workdir={self.workdir}')
      self.assertOneLine(out, override.split('=')[0], f'no field {field}',
                         f'did you mean "{hint}"')

  def test_overrides_still_reach_the_config(self):
    out = _cli('--config=configs/tiny.py', '--config.train.steps=-4', f'--workdir={self.workdir}')
    self.assertOneLine(out, 'train.steps', '-4')

  def test_verbosity_shows_the_traceback(self):
    out = _cli('--config=configs/tiny.py', '--config.modle.d_model=3', '--verbosity=1',
               f'--workdir={self.workdir}')
    self.assertNotEqual(out.returncode, 0)
    self.assertIn('Traceback', out.stderr)

  def test_interrupt_and_unknown_failures(self):
    """Ctrl-C outside training is one line and status 130; a full disk one line; a bug keeps
    its traceback."""
    def run(exc):
      def fn():
        raise exc
      err = io_lib.StringIO()
      with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as stop:
        cli.run_reporting(fn, show_tracebacks=False)
      return stop.exception.code, err.getvalue()

    code, err = run(KeyboardInterrupt())
    self.assertEqual((code, err), (130, 'error: interrupted (Ctrl-C); what was written '
                                        'completely is kept\n'))
    code, err = run(OSError(errno.ENOSPC, 'No space left on device', '/data/x.json'))
    self.assertEqual(code, 1)
    self.assertStartsWith(err, 'error: /data/x.json: No space left on device (the disk is full')
    with self.assertRaises(ZeroDivisionError):
      cli.run_reporting(lambda: 1 / 0, show_tracebacks=False)


class InterruptTest(absltest.TestCase):

  def test_ctrl_c_in_training_stops_after_a_save_and_twice_at_once(self):
    previous = signal.getsignal(signal.SIGINT)
    with loop._StopFlag() as stop:
      os.kill(os.getpid(), signal.SIGINT)
      self.assertTrue(stop.set)  # the loop saves a checkpoint and stops at the next step
      with self.assertRaises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    self.assertIs(signal.getsignal(signal.SIGINT), previous)


def _pack(kind: str, root: str, files: list[str]) -> str:
  path = os.path.join(root, f'src.{kind}')
  if kind == 'zip':
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
      for f in files:
        zf.write(f, os.path.basename(f))
  else:
    with tarfile.open(path, 'w:gz' if kind == 'tar.gz' else 'w') as tf:
      for f in files:
        tf.add(f, os.path.basename(f))
  return path


class CorpusTest(OneLineMixin, absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.files = [os.path.join(_STDLIB, n) for n in ('decoder.py', 'encoder.py', 'scanner.py')]

  def _build(self, paths: str, **fields):
    cfg = _tiny(**{'corpus.sources': '', 'corpus.paths': paths, **fields})
    out_dir = os.path.join(self.dir, 'corpus')
    return lambda: corpus.build_corpus(cfg.corpus, out_dir), out_dir

  def assertNothingWritten(self, out_dir: str):
    self.assertFalse(os.path.exists(out_dir))
    self.assertEqual([n for n in os.listdir(self.dir) if '.partial.' in n], [])

  def test_truncated_archives_are_named(self):
    cases = []
    for kind in ('tar.gz', 'zip', 'tar'):
      whole = _pack(kind, self.dir, self.files)
      with open(whole, 'rb') as f:
        data = f.read()
      # tar: cut at a block boundary after the first member, where tarfile itself ends quietly
      cut = {'tar.gz': len(data) // 2, 'zip': len(data) - 40, 'tar': 512 * 8}[kind]
      broken = os.path.join(self.dir, f'cut.{kind}')
      with open(broken, 'wb') as f:
        f.write(data[:cut])
      cases.append((kind, broken, 1))
    cases.append(('tar.gz', cases[0][1], 2))  # read in a worker process
    for kind, broken, workers in cases:
      with self.subTest(kind=kind, workers=workers):
        build, out_dir = self._build(broken, **{'corpus.workers': workers})
        with self.assertRaisesRegex(SourceError, f'archive {broken} is truncated or corrupt'):
          build()
        self.assertNothingWritten(out_dir)
    build, out_dir = self._build(_pack('tar.gz', self.dir, self.files))
    self.assertLen(build()['languages']['python']['shards']['train'], 1)  # whole ones still read

  def test_everything_filtered_out_writes_nothing(self):
    source = os.path.join(self.dir, 'src')
    os.makedirs(source)
    for f in self.files:
      shutil.copy(f, source)
    build, out_dir = self._build(source, **{'corpus.max_file_bytes': 100})
    with self.assertRaisesRegex(CorpusError, r'all 3 files read from path:src were filtered out '
                                             r'\(too_large 3 \(corpus.max_file_bytes\)\)'):
      build()
    self.assertNothingWritten(out_dir)
    workdir = os.path.join(self.dir, 'run')
    out = _cli('--config=configs/tiny.py', '--mode=corpus', f'--workdir={workdir}',
               '--config.corpus.sources=', f'--config.corpus.paths={source}',
               '--config.corpus.languages=go')
    self.assertOneLine(out, 'other_language 3 (corpus.languages)', 'nothing written to')
    self.assertEqual(os.listdir(workdir), [])


_REFERENCE: list[str] = []
STEPS = 12  # checkpoints at steps 1, 2, 5, 10 and 12


def _reference_run() -> str:
  """A tiny run of STEPS steps, trained once per test process without interruption."""
  if not _REFERENCE:
    _REFERENCE.append(tempfile.mkdtemp())
    loop.train(_tiny(**{'train.steps': STEPS}), _REFERENCE[0])
  return _REFERENCE[0]


class InitFromTest(OneLineMixin, absltest.TestCase):

  def test_init_from_a_run_of_another_width_is_one_line(self):
    """The model mismatch is the one line; Orbax's threads, shut down with the interpreter,
    add no 'cannot schedule new futures' traceback after it (issue 21's report)."""
    source = _reference_run()
    out = _cli('--config=configs/tiny.py', f'--workdir={tempfile.mkdtemp()}', *SMALL_RUN,
               f'--config.train.init_from={source}', '--config.model.d_model=64')
    self.assertOneLine(out, f'model config differs from the run at {source}',
                       'd_model: 32 there vs 64 here')

  def test_probing_without_some_of_the_runs_languages_is_one_line(self):
    """The report reads the run's own data.languages: probes that leave one out would end in a
    KeyError; they stop first, naming the language and the run's config.json."""
    source = _reference_run()
    out = _cli('--config=configs/tiny.py', f'--workdir={source}', *SMALL_RUN, '--mode=probe',
               '--config.data.languages=python,php')
    self.assertOneLine(out, "leaves out ['go'] of the run's data.languages=python,php,go")

  def test_orbax_shutdown_records_are_dropped_and_others_kept(self):
    """The filter behind that: whether the traceback shows depends on thread timing, so the
    filter itself is checked on records as Orbax's future.py logs them."""
    noise = cli._FailedWriteNoise(f'{os.sep}orbax{os.sep}')
    def record(message, path='/x/site-packages/orbax/checkpoint/_src/futures/future.py'):
      return logging.LogRecord('absl', logging.ERROR, path, 387, message, None, None)
    for message in ('cannot schedule new futures after interpreter shutdown',
                    'cannot schedule new futures after shutdown'):
      self.assertFalse(noise.filter(record(f'_SignalingThread.run() raised: {message}')))
    self.assertTrue(noise.filter(record('a checkpoint failed for another reason')))
    self.assertTrue(noise.filter(record('cannot schedule new futures after shutdown',
                                        path='/x/babel_jax/train/loop.py')))


class RunDirTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.run_dir = _reference_run()

  def _copy(self) -> str:
    path = os.path.join(tempfile.mkdtemp(), 'run')
    shutil.copytree(self.run_dir, path)
    return path

  def test_probe_without_checkpoints(self):
    path = self._copy()
    shutil.rmtree(os.path.join(path, 'checkpoints'))
    os.makedirs(os.path.join(path, 'checkpoints'))
    with self.assertRaisesRegex(RunError, f'no checkpoints to probe in {path}/checkpoints'):
      stream.walk(_tiny(**{'train.steps': STEPS}), path)
    with self.assertRaisesRegex(RunError, r"probe.steps='100:200' selects none of \[1, "):
      stream.walk(_tiny(**{'train.steps': STEPS, 'probe.steps': '100:200'}), self._copy())

  def test_damaged_run_files(self):
    path = self._copy()
    with open(os.path.join(path, 'config.json'), 'a') as f:
      f.write('{')
    with self.assertRaisesRegex(RunError, f'{path}/config.json is damaged'):
      RunDir(path).config()
    metrics = os.path.join(path, 'metrics.jsonl')
    with open(metrics, 'a') as f:
      f.write('{"step": 13, "lo')  # a line torn by a full disk: dropped on resume
    metrics_lib.MetricsWriter(RunDir(path), STEPS, tensorboard=False).close()
    self.assertEqual([r['step'] for r in RunDir(path).metrics()],
                     list(range(1, STEPS + 1)))
    with open(metrics, 'a') as f:
      f.write('garbage\n{"step": 13}\n')
    with self.assertRaisesRegex(RunError, f'{metrics}:13 is damaged'):
      RunDir(path).metrics()

  def test_unrestorable_checkpoint_is_named(self):
    path = self._copy()
    data = os.path.join(path, 'checkpoints', '12', 'params', 'ocdbt.process_0', 'd')
    for name in os.listdir(data):
      os.remove(os.path.join(data, name))
    with self.assertRaisesRegex(CheckpointError, f'checkpoint {path}/checkpoints/12 cannot be '
                                                 'restored .* go on from step 10'):
      loop.train(_tiny(**{'train.steps': STEPS + 2}), path)
    path = self._copy()
    os.remove(os.path.join(path, 'config.json'))  # nothing to compare the model with first
    with self.assertRaisesRegex(CheckpointError, f'{path}/checkpoints/12 cannot be restored '
                                                 r'\(ValueError: .*shape.* from another model'):
      loop.train(_tiny(**{'train.steps': STEPS + 2, 'model.d_model': 64}), path)

  def test_read_only_notices_are_silenced(self):
    ckpt = os.path.join(self.run_dir, 'checkpoints')
    with self.assertNoLogs('absl', level='WARNING'):
      ckpt_lib.make_manager(ckpt, read_only=True).close()
    with self.assertLogs('absl', level='WARNING'):  # other warnings still pass
      absl_logging.warning('Given directory is writable')


def _mount_tmpfs(path: str, size: str) -> str | None:
  """Mounts a tmpfs of `size` at path; the reason when it cannot."""
  if os.geteuid() != 0:
    return 'not root'
  out = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', path],
                       capture_output=True, text=True)
  return None if out.returncode == 0 else f'mount failed: {out.stderr.strip()}'


class DiskFullTest(OneLineMixin, absltest.TestCase):
  """Training on a tmpfs too small for the run: one line, the last good checkpoint restorable,
  and after the file system grows, a resume with the losses of an uninterrupted run."""

  def test_full_disk_then_resume(self):
    reference = _reference_run()
    first = os.path.join(reference, 'checkpoints', '1')
    ckpt_bytes = sum(os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(first)
                     for f in fs)
    mount = tempfile.mkdtemp()
    # Room for two checkpoints (steps 1 and 2) and the run's small files, not for a third.
    why_not = _mount_tmpfs(mount, f'{int(2.5 * ckpt_bytes) // 4096 * 4}k')
    if why_not:
      self.skipTest(f'needs a small tmpfs: {why_not}')
    self.addCleanup(subprocess.run, ['umount', '-l', mount])
    workdir = os.path.join(mount, 'run')

    out = _cli('--config=configs/tiny.py', f'--workdir={workdir}', *SMALL_RUN,
               f'--config.train.steps={STEPS}')
    line = self.assertOneLine(out, '(no space left) at training step', 'free space and run the '
                              'same command again')
    self.assertRegex(line, rf'cannot write (checkpoint {workdir}/checkpoints/\d+|'
                           rf'{workdir}/\S+) \(no space')
    saved = ckpt_lib.complete_steps(os.path.join(workdir, 'checkpoints'))
    self.assertNotEmpty(saved)
    self.assertLess(saved[-1], STEPS)
    self.assertIn(f'the last good checkpoint is {workdir}/checkpoints/{saved[-1]}:', line)
    left = [os.path.join(d, n) for d, ds, fs in os.walk(workdir) for n in ds + fs
            if '.orbax-checkpoint-tmp' in n or '.tmp.' in n]
    self.assertEqual(left, [], 'a partial write was left behind')
    cfg = _tiny(**{'train.steps': STEPS})
    manager = ckpt_lib.make_manager(os.path.join(workdir, 'checkpoints'), read_only=True)
    abstract, _ = state_lib.state_shardings(factory.build_runtime(cfg), state_lib.optimizer(cfg.train))
    state, _ = ckpt_lib.restore(manager, saved[-1], abstract)
    manager.close()
    self.assertEqual(int(state.step), saved[-1])

    subprocess.run(['mount', '-o', 'remount,size=64m', mount], check=True)
    result = loop.train(cfg, workdir)
    self.assertEqual((result['status'], result['step']), ('finished', STEPS))
    self.assertEqual([m['step'] for m in RunDir(workdir).metrics()],
                     list(range(1, STEPS + 1)))
    np.testing.assert_allclose(losses(workdir), losses(reference), rtol=1e-6)


if __name__ == '__main__':
  absltest.main()
