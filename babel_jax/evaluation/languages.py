"""Each evaluation language's toolchain, stop sequences, and assembly of a runnable program.

Commands are argv lists; `{dir}` is the program's scratch directory and `{file}` its source file
(`{dir}/<file_name>`).
"""

from __future__ import annotations

import dataclasses
import shutil


@dataclasses.dataclass(frozen=True)
class Language:
  name: str
  file_name: str
  compile: tuple[str, ...] | None  # for PHP, JavaScript and Python only a syntax check
  run: tuple[str, ...]
  stop: tuple[str, ...]  # generation stops at the first of these, which ends the function
  env: tuple[tuple[str, str], ...] = ()  # extra environment, placeholders allowed
  # Output that marks a failed check when the exit code cannot (Python's plain `assert`s).
  failure_marker: str | None = None

  def tools(self) -> list[str]:
    return sorted({argv[0] for argv in (self.compile, self.run)
                   if argv is not None and not argv[0].startswith('{')})

  def missing_tools(self) -> list[str]:
    return [tool for tool in self.tools() if shutil.which(tool) is None]


_BRACE_STOP = ('\n}',)  # the function's closing brace at column 0
_CLASS_STOP = ('\n    }',)  # the method's closing brace inside `class Problem {`

LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (
    # Interpreted languages get a syntax check as their compile step.
    Language('python', 'main.py', ('python3', '-m', 'py_compile', '{file}'), ('python3', '{file}'),
             stop=('\nclass', '\ndef', '\n#', '\nif', '\nprint'),
             failure_marker='AssertionError'),
    Language('php', 'main.php', ('php', '-l', '{file}'), ('php', '{file}'), stop=_BRACE_STOP),
    Language('javascript', 'main.js', ('node', '--check', '{file}'), ('node', '{file}'),
             stop=_BRACE_STOP),
    Language('go', 'main.go', ('go', 'build', '-o', '{dir}/main', '{file}'), ('{dir}/main',),
             stop=_BRACE_STOP,
             env=(('GOCACHE', '{dir}/gocache'), ('GOPATH', '{dir}/gopath'),
                  ('GO111MODULE', 'off'), ('GOTOOLCHAIN', 'local'))),
    Language('cpp', 'main.cpp', ('g++', '-std=c++17', '-O0', '-o', '{dir}/main', '{file}'),
             ('{dir}/main',), stop=_BRACE_STOP),
    Language('csharp', 'Problem.cs', ('mcs', '-out:{dir}/Problem.exe', '{file}'),
             ('mono', '{dir}/Problem.exe'), stop=_CLASS_STOP),
    Language('java', 'Problem.java', ('javac', '-d', '{dir}', '{file}'),
             ('java', '-cp', '{dir}', 'Problem'), stop=_CLASS_STOP),
)}


def truncate(completion: str, stop: list[str] | tuple[str, ...]) -> str:
  """The completion up to (not including) the earliest stop sequence."""
  cut = min((i for i in (completion.find(s) for s in stop) if i >= 0), default=len(completion))
  return completion[:cut]


def program(record: dict, completion: str) -> str:
  """The source file for a translated problem: prompt + truncated completion + tests."""
  if not record.get('translated', False):
    raise ValueError(f'{record["task_id"]} was not translated to {record["language"]}')
  return record['prompt'] + truncate(completion, record['stop']) + record['tests']
