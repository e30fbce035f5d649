"""How the command line reports what goes wrong: one line, `error: <message>`, exit status 1.

Tracebacks only with --verbosity (e.g. --verbosity=1). This covers what happens before main()
runs (a --config file that is missing, does not compile or raises; a misspelled --config.x
override: ml_collections raises those while absl parses the flags), the project's errors
(BabelError), a file that cannot be read or written (OSError), running out of device memory,
Ctrl-C, and the noise a failed background write leaves (Orbax's log records of a save that the
training loop reports itself, and the exceptions its orphaned write callbacks raise).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import threading
import warnings
from typing import Callable, Iterator, NoReturn, Sequence

from absl import flags
import ml_collections

from babel_jax import io
from babel_jax.errors import BabelError

INTERRUPTED_STATUS = 130  # the shell's status for a program stopped by Ctrl-C
_VERBOSE = re.compile(r'--?(v|verbosity)(=|$)')
_CONFIG = re.compile(r'--?config(=|$)')
_OVERRIDE = re.compile(r'--?(no)?config\.([\w.]+)')
_DID_YOU_MEAN = re.compile(r'Did you mean "([\w.]+)"')


def verbose(argv: Sequence[str]) -> bool:
  """Whether the command line asks for tracebacks (--verbosity or -v, any value)."""
  return any(_VERBOSE.match(a) for a in argv[1:])


def exit_with(message: str, status: int = 1) -> NoReturn:
  sys.stderr.write(f'error: {message}\n')
  sys.stderr.flush()
  raise SystemExit(status)


def _chain(e: BaseException | None) -> Iterator[BaseException]:
  """e, then what it was raised from or during, innermost last."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__


def _first_line(e: BaseException) -> str:
  return next((l.strip() for l in str(e).splitlines() if l.strip()), type(e).__name__)


# Flag parsing -----------------------------------------------------------------------------------
def _config_path(argv: Sequence[str]) -> str | None:
  """The --config value (without a ':arguments' tail) as given on the command line."""
  for i, arg in enumerate(argv):
    m = _CONFIG.match(arg)
    if m:
      value = arg[m.end():] if m.group(1) == '=' else (argv[i + 1] if i + 1 < len(argv) else '')
      return value.split(':', 1)[0]
  return None


def flag_error(e: BaseException, argv: Sequence[str]) -> str:
  """One line for an exception raised while parsing the command line."""
  path = _config_path(argv)
  if path is not None and not os.path.isfile(path):
    where = '' if os.path.isabs(path) else f' (relative to {os.getcwd()})'
    what = 'is a directory' if os.path.isdir(path) else 'no such file'
    return f'--config {path}: {what}{where}'
  chain = list(_chain(e))
  root = chain[-1]
  if isinstance(root, SyntaxError):
    return f'--config {root.filename or path}:{root.lineno}: {root.msg}'
  missing = [_arg_text(x) for x in chain if isinstance(x, (KeyError, AttributeError))]
  if missing:
    key = next(iter(missing[-1].splitlines()), '').strip('\'"')
    overrides = [m.group(2) for m in map(_OVERRIDE.match, argv) if m]
    named = next((o for o in overrides if key in o.split('.')), None)
    if named is not None:
      hint = next(filter(None, map(_DID_YOU_MEAN.search, missing)), None)
      return (f'--config.{named}: the config has no field {key!r}' +
              (f' (did you mean "{hint.group(1)}"?)' if hint else '') +
              f'; the fields are in {path} and babel_jax/config/sections.py')
  if path is not None and isinstance(root, AttributeError) and 'get_config' in str(root):
    return f'--config {path}: the file defines no get_config()'
  if path is not None:
    inside = [f for f in _frames(root) if os.path.abspath(f[0]) == os.path.abspath(path)]
    if inside:
      return (f'--config {path}:{inside[-1][1]}: get_config() raised '
              f'{type(root).__name__}: {_first_line(root)}')
  text = _first_line(e)
  return f'{text} (--helpfull lists the flags)' if isinstance(e, flags.Error) else text


def _arg_text(e: BaseException) -> str:
  """The message of a KeyError (str() would quote it) or of what it wraps."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  return str(e.args[0]) if e.args else ''


def _frames(e: BaseException) -> list[tuple[str, int]]:
  tb, out = e.__traceback__, []
  while tb is not None:
    out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
    tb = tb.tb_next
  return out


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (for app.run's flags_parser), every failure as one line.

  ml_collections loads --config while absl parses the flags and defers a missing file until the
  config is first used; both are caught here, before main() runs. --config.x=y overrides work
  as before: this wraps the parsing, it does not change it.
  """
  logging.getLogger('absl').addFilter(_ReturnedNone())  # reported below, in the same line
  try:
    rest = flags.FLAGS(argv)
    cfg = flags.FLAGS['config'].value if 'config' in flags.FLAGS else None
    if cfg is not None:
      getattr(cfg, 'keys')  # a deferred load failure raises here
  except Exception as e:  # pylint: disable=broad-except
    if verbose(argv):
      raise
    exit_with(flag_error(e, argv))
  path = _config_path(argv)
  if path is not None and not isinstance(cfg, ml_collections.ConfigDict):
    exit_with(f'--config {path}: get_config() returned {type(cfg).__name__}, not a ConfigDict '
              '(start from babel_jax.config.default_config() and return it)')
  return rest


class _ReturnedNone(logging.Filter):
  """Drops ml_collections' warning that get_config() returned None: parse_flags says so."""

  def filter(self, record: logging.LogRecord) -> bool:
    return 'did you forget a return statement' not in str(record.msg)


# While main() runs ------------------------------------------------------------------------------
def describe(e: BaseException) -> str | None:
  """One line for an exception the user can act on; None for a bug (its traceback is kept)."""
  if isinstance(e, BabelError):
    return str(e)
  if isinstance(e, KeyboardInterrupt):
    return 'interrupted (Ctrl-C); what was written completely is kept'
  if isinstance(e, OSError) and e.errno is not None:
    where = f'{e.filename}: ' if e.filename else ''
    hint = {errno.ENOSPC: ' (the disk is full: free space and run the same command again)',
            errno.EDQUOT: ' (over the disk quota: free space and run the same command again)',
            errno.EACCES: ' (check the permissions of the path)'}.get(e.errno, '')
    return f'{where}{e.strerror or e}{hint}'
  reason = io.storage_failure(e)
  if reason is not None:
    return f'{reason}: {_first_line(e)[:300]}'
  if type(e).__name__ in ('XlaRuntimeError', 'JaxRuntimeError') and 'RESOURCE_EXHAUSTED' in str(e):
    return (f'out of device memory ({_first_line(e)[:200]}); lower train.batch_size or '
            'data.seq_len, raise train.grad_accum or mesh.fsdp, or set model.remat')
  return None


def run_reporting(fn: Callable[[], None], show_tracebacks: bool) -> None:
  """Runs fn; what `describe` knows becomes one line and a non-zero exit status (with
  show_tracebacks, the traceback instead)."""
  if not show_tracebacks:
    quiet_background_failures()
  try:
    fn()
  except (Exception, KeyboardInterrupt) as e:  # pylint: disable=broad-except
    line = describe(e)
    if line is None or show_tracebacks:
      raise
    # Orbax writes still in flight when a save failed are collected unfinished at shutdown;
    # their "coroutine ... was never awaited" warnings would follow the one line.
    warnings.filterwarnings('ignore', message=r'coroutine .* was never awaited',
                            category=RuntimeWarning)
    exit_with(line, INTERRUPTED_STATUS if isinstance(e, KeyboardInterrupt) else 1)


class _FailedWriteNoise(logging.Filter):
  """Drops error records about a write that failed for lack of storage, from Orbax (through
  absl logging) and from the asyncio tasks of its writes: the training loop reports the failure
  itself, as one line naming the checkpoint and the step."""

  def __init__(self, source: str = ''):
    super().__init__()
    self.source = source  # only records logged from files under this folder name

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR or self.source not in record.pathname:
      return True
    exc = record.exc_info[1] if record.exc_info else None
    # Once a write has failed and the run shuts down, Orbax's metadata thread finds its
    # executor closed: a consequence of the failure already reported, not a failure of its own.
    shutdown = 'cannot schedule new futures after'  # '... shutdown', '... interpreter shutdown'
    return not (io.storage_failure(record.getMessage()) or shutdown in record.getMessage() or
                (exc is not None and (io.storage_failure(exc) or shutdown in str(exc))))


def _quiet_unraisable(hook: Callable) -> Callable:
  def quiet(u) -> None:
    # After an Orbax save or restore fails (and is reported), its other reads and writes go on:
    # their callbacks find the event loop closed, their coroutines are collected unfinished.
    code = getattr(getattr(u.object, 'cr_code', None), 'co_filename', '')
    if (isinstance(u.exc_value, RuntimeError) and 'Event loop is closed' in str(u.exc_value) or
        isinstance(u.exc_value, ImportError) and 'shutting down' in str(u.exc_value) or
        f'{os.sep}orbax{os.sep}' in code or io.storage_failure(u.exc_value)):
      return
    hook(u)
  return quiet


def _quiet_threads(hook: Callable) -> Callable:
  def quiet(args) -> None:
    # A writer thread (TensorBoard's) that dies on a full disk: the main thread's own writes
    # fail there too and report it.
    if not io.storage_failure(args.exc_value):
      hook(args)
  return quiet


def quiet_background_failures() -> None:
  """Keeps the noise of a failed background write off stderr (not its report); idempotent."""
  absl_logger = logging.getLogger('absl')
  if not any(isinstance(f, _FailedWriteNoise) for f in absl_logger.filters):
    absl_logger.addFilter(_FailedWriteNoise(f'{os.sep}orbax{os.sep}'))
    logging.getLogger('asyncio').addFilter(_FailedWriteNoise())
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    threading.excepthook = _quiet_threads(threading.excepthook)
