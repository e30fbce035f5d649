"""Which language a source file is in: by extension, then by shebang, then a source's default.

The built-in map covers the paper's languages (Python, PHP, C#, Go, C++) and a few more; a
config extends it with '.ext=lang' pairs (`corpus.extensions`), new language names included.
"""

from __future__ import annotations

import os
import re

from babel_jax import config as config_lib
from babel_jax.errors import LanguageMapError

EXTENSIONS = {
    '.py': 'python', '.pyi': 'python',
    '.php': 'php',
    '.cs': 'csharp',
    '.go': 'go',
    '.cc': 'cpp', '.cpp': 'cpp', '.cxx': 'cpp', '.c++': 'cpp', '.hh': 'cpp', '.hpp': 'cpp',
    '.hxx': 'cpp', '.h++': 'cpp', '.ipp': 'cpp', '.tcc': 'cpp', '.inl': 'cpp',
    '.c': 'c', '.h': 'c',
    '.java': 'java',
    '.js': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript',
    '.ts': 'typescript', '.mts': 'typescript', '.cts': 'typescript', '.tsx': 'typescript',
    '.rs': 'rust',
}

SHEBANGS = {'python': 'python', 'php': 'php', 'node': 'javascript', 'nodejs': 'javascript',
            'deno': 'typescript', 'ts-node': 'typescript'}

_SHEBANG = re.compile(rb'^#!\s*(?:\S*/)?(?:env\s+(?:-\S+\s+)*)?([A-Za-z_.+-]+?)(?:[\d.]*)(?:\s|$)')
_NAME = re.compile(r'^[a-z][a-z0-9_+#-]*$')


def parse_extensions(spec: str) -> dict[str, str]:
  """'.kt=kotlin,.scala=scala' -> {'.kt': 'kotlin', '.scala': 'scala'}."""
  out = {}
  for item in config_lib.items(spec):
    ext, sep, lang = item.partition('=')
    ext, lang = ext.strip().lower(), lang.strip()
    if not sep or not ext.startswith('.') or len(ext) < 2 or not _NAME.match(lang):
      raise LanguageMapError(
          f'corpus.extensions entry {item!r} must look like ".ext=language" (lower-case name)')
    out[ext] = lang
  return out


class LanguageMap:
  """Maps a file to its language; `default` names the language of extensionless files."""

  def __init__(self, extra: dict[str, str] | None = None):
    self.extensions = {**EXTENSIONS, **(extra or {})}

  @property
  def languages(self) -> set[str]:
    return set(self.extensions.values()) | set(SHEBANGS.values())

  def by_name(self, path: str, overrides: dict[str, str] | None = None,
              default: str | None = None) -> str | None:
    """Language from the file name alone, or None when the content must decide."""
    ext = os.path.splitext(path)[1].lower()
    if ext and overrides and ext in overrides:
      return overrides[ext]
    if ext in self.extensions:
      return self.extensions[ext]
    if not ext and default:
      return default
    return None

  @staticmethod
  def by_shebang(head: bytes) -> str | None:
    m = _SHEBANG.match(head[:200])
    if not m:
      return None
    return SHEBANGS.get(m.group(1).decode('ascii', 'replace').lower())
