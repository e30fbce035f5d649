"""Where source code comes from: a small registry of named sources, and a reader for
directories and archives (tar.gz/xz/bz2, zip such as the JDK's src.zip).

Registry names (`corpus.sources`):
  python_stdlib  the running interpreter's standard library            (present on a fresh machine)
  jdk_src        the JDK's lib/src.zip                                  (openjdk-*-jdk, or any JDK)
  cpp_headers    the C++ standard library headers, /usr/include/c++/N  (g++)
  npm_js         the JavaScript of the bundled npm                      (nodejs/npm)
  debian         what launch/fetch_debian_sources.sh fetched: PHP, C#, Go, C++ and more
Extra paths (`corpus.paths`) are 'PATH' or 'PATH=LANG', LANG naming the language of files whose
extension does not say (extensionless C++ headers, .h files in C++ trees). A path may also be a
Parquet or JSON Lines dataset shard or a folder of them (read by shards.py, planned in scan.py).
"""

from __future__ import annotations

import dataclasses
import glob
import lzma
import os
import shutil
import stat
import sysconfig
import tarfile
import zipfile
import zlib
from typing import Callable, Iterator

from babel_jax.errors import SourceError

ARCHIVE_SUFFIXES = ('.tar', '.tar.gz', '.tgz', '.tar.xz', '.txz', '.tar.bz2', '.tbz2', '.zip',
                    '.jar')
# What reading a truncated or corrupt archive raises, in any of its compressions.
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError,
                  OSError)
_SKIP_DIRS = frozenset({'.git', '.hg', '.svn', '__pycache__', 'site-packages', 'dist-packages'})


@dataclasses.dataclass(frozen=True)
class Source:
  """One directory or archive, with hints for files whose name does not give the language."""
  name: str
  path: str
  default_language: str | None = None  # for extensionless files
  overrides: tuple[tuple[str, str], ...] = ()  # extension -> language inside this source


@dataclasses.dataclass
class FileEntry:
  source: str
  path: str  # relative to the source root (or the archive member name)
  size: int
  read: Callable[[], bytes]


def _hinted(name: str, path: str, lang: str | None) -> Source:
  overrides = (('.h', 'cpp'),) if lang == 'cpp' else ()
  return Source(name, path, lang, overrides)


def _python_stdlib() -> list[Source]:
  return [Source('python_stdlib', sysconfig.get_paths()['stdlib'])]


def _jdk_src() -> list[Source]:
  javac = shutil.which('javac')
  candidates = []
  if javac:
    home = os.path.dirname(os.path.dirname(os.path.realpath(javac)))
    candidates.append(os.path.join(home, 'lib', 'src.zip'))
  candidates += sorted(glob.glob('/usr/lib/jvm/*/lib/src.zip'))
  for path in candidates:
    if os.path.isfile(path):
      return [Source('jdk_src', os.path.realpath(path))]
  raise SourceError('source jdk_src: no JDK src.zip found (looked next to javac and in '
                    '/usr/lib/jvm/*/lib/src.zip); install openjdk-17-jdk')


def _cpp_headers() -> list[Source]:
  dirs = sorted(glob.glob('/usr/include/c++/*'), key=lambda p: [int(x) if x.isdigit() else 0
                                                                  for x in os.path.basename(p).split('.')])
  dirs = [d for d in dirs if os.path.isdir(d) and not os.path.islink(d)]
  if not dirs:
    raise SourceError('source cpp_headers: no /usr/include/c++/N directory; install g++')
  return [_hinted('cpp_headers', dirs[-1], 'cpp')]


def _npm_js() -> list[Source]:
  for path in ('/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm',
               '/usr/share/nodejs/npm'):
    if os.path.isdir(path):
      return [Source('npm_js', os.path.realpath(path))]
  raise SourceError('source npm_js: npm not found in /usr/lib/node_modules or '
                    '/usr/share/nodejs; install npm')


def debian_dir(configured: str = '') -> str:
  return configured or os.environ.get('BABEL_JAX_SOURCES') or os.path.expanduser(
      '~/.cache/babel_jax/debian')


def _debian(configured: str) -> list[Source]:
  root = debian_dir(configured)
  listing = os.path.join(root, 'paths.txt')
  if not os.path.isfile(listing):
    raise SourceError(f'source debian: {listing} not found; run '
                      f'`bash launch/fetch_debian_sources.sh {root}` first')
  out = []
  with open(listing) as f:
    for n, line in enumerate(f, 1):
      if not line.strip() or line.startswith('#'):
        continue
      lang, _, path = line.strip().partition(' ')
      if not os.path.exists(path.strip()):
        raise SourceError(f'{listing}:{n}: {path.strip()!r} does not exist; re-run '
                          'launch/fetch_debian_sources.sh')
      out.append(_hinted(f'debian:{lang}', path.strip(), lang))
  return out


def is_remote(path: str) -> bool:
  """A URL such as gs://bucket/x.parquet or s3://bucket/data/ (read by Beam's filesystems)."""
  return '://' in path


def resolve(names: list[str], paths: list[str], debian: str = '',
            remote_ok: bool = False) -> list[Source]:
  """Registry names and extra 'PATH[=LANG]' entries -> Sources, failing on anything missing.
  With remote_ok (the Beam runner) a remote path is kept as given; beam_build checks it."""
  registry: dict[str, Callable[[], list[Source]]] = {
      'python_stdlib': _python_stdlib, 'jdk_src': _jdk_src, 'cpp_headers': _cpp_headers,
      'npm_js': _npm_js, 'debian': lambda: _debian(debian)}
  out: list[Source] = []
  for name in names:
    if name not in registry:
      raise SourceError(f'corpus.sources names unknown source {name!r}; known: '
                        f'{", ".join(sorted(registry))} (or add directories to corpus.paths)')
    out += registry[name]()
  for item in paths:
    path, _, lang = item.partition('=')
    if is_remote(path) and not remote_ok:
      raise SourceError(f'corpus.paths entry {path!r} is remote; only corpus.runner=beam reads '
                        'remote paths (through Beam\'s filesystems)')
    if not is_remote(path) and not os.path.exists(path):
      raise SourceError(f'corpus.paths entry {path!r} does not exist')
    out.append(_hinted(f'path:{os.path.basename(path.rstrip("/")) or path}', path, lang or None))
  return out


def is_archive(path: str) -> bool:
  return os.path.isfile(path) and path.lower().endswith(ARCHIVE_SUFFIXES)


def iterate(source: Source) -> Iterator[FileEntry]:
  """Every regular file of a directory tree or archive, in a deterministic order."""
  if is_archive(source.path):
    yield from (_iter_zip if source.path.lower().endswith(('.zip', '.jar'))
                else _iter_tar)(source)
    return
  if not os.path.isdir(source.path):
    raise SourceError(f'source {source.name}: {source.path!r} is neither a directory nor an '
                      f'archive ({", ".join(ARCHIVE_SUFFIXES)})')
  root = source.path
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
    for fn in sorted(filenames):
      full = os.path.join(dirpath, fn)
      try:
        st = os.lstat(full)
      except OSError:
        continue
      if not stat.S_ISREG(st.st_mode):
        continue
      yield FileEntry(source.name, os.path.relpath(full, root), st.st_size,
                      lambda full=full: _read(full))


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def archive_error(path: str, e: BaseException, member: str | None = None) -> SourceError:
  """The one-line error for an archive that cannot be read, naming it (and the member)."""
  where = f' at member {member!r}' if member else ''
  text = (str(e).strip().splitlines() or [''])[0].rstrip(':')
  kind = type(e).__name__ if type(e).__name__ != 'error' else f'{type(e).__module__}.error'
  return SourceError(f'archive {path} is truncated or corrupt{where} ({kind}: {text}); fetch '
                     'it again or remove it from the corpus sources')


def open_zip(path: str) -> zipfile.ZipFile:
  try:
    return zipfile.ZipFile(path)
  except ARCHIVE_ERRORS as e:
    raise archive_error(path, e) from e


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
  """A zip member's bytes (checked against its CRC by zipfile)."""
  try:
    return zf.read(info)
  except ARCHIVE_ERRORS as e:
    raise archive_error(str(zf.filename), e, info.filename) from e


def _iter_zip(source: Source) -> Iterator[FileEntry]:
  with open_zip(source.path) as zf:
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
      if not info.is_dir():
        yield FileEntry(source.name, info.filename, info.file_size,
                        lambda info=info: read_member(zf, info))


def _iter_tar(source: Source) -> Iterator[FileEntry]:
  # Streamed in archive order: compressed tars cannot seek cheaply.
  member = None
  try:
    with tarfile.open(source.path, 'r:*') as tf:
      for member in tf:
        if member.isfile():
          f = tf.extractfile(member)
          data = f.read() if f is not None else b''
          yield FileEntry(source.name, member.name, member.size, lambda data=data: data)
      member = None
      _check_tar_end(tf)
  except ARCHIVE_ERRORS as e:
    raise archive_error(source.path, e, member.name if member else None) from e


def _check_tar_end(tf: tarfile.TarFile) -> None:
  """tarfile ends its listing quietly at a cut or garbled header; a whole archive has a zero
  block there. Reading to the end also has a compressed stream check its length and CRC."""
  tf.fileobj.seek(tf.offset)
  block = tf.fileobj.read(tarfile.BLOCKSIZE)
  if len(block) < tarfile.BLOCKSIZE or block.strip(b'\0'):
    raise tarfile.ReadError(f'no end-of-archive block after byte {tf.offset} of the tar stream')
  while tf.fileobj.read(1 << 20):
    pass
