"""The layout a newcomer relies on: stages import one way, small modules, short functions.

* ``imaging`` has one subpackage per stage; a stage imports only the stages below it
  (:data:`STAGE_RANK`), and no module imports one that imports it back (no cycles),
  lazy imports inside functions included.
* No module of ``imaging``, ``models`` or ``scripts`` is over :data:`MAX_MODULE_LINES`
  lines; no function is over :data:`MAX_FUNCTION_CODE_LINES` lines of code (docstring,
  comments and blank lines not counted).
* ``import imaging, models`` imports no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("imaging", "models", "scripts")
MAX_MODULE_LINES = 600
MAX_FUNCTION_CODE_LINES = 80

#: Stage -> rank: a module of one stage may import stages of a lower rank and its own.
STAGE_RANK: dict[str, int] = {
    "common": 0,
    "io": 1,
    "phantom": 2,
    "scoring": 2,
    "trial": 2,
    "pipeline": 3,
    "validation": 3,
    "cli": 4,
}


def _modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every Python file of the given top-level folders."""
    found: dict[str, Path] = {}
    for top in packages:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports, at top level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "imaging" and len(parts) > 2 or (
        parts[0] == "imaging" and len(parts) == 2 and parts[1] in STAGE_RANK) else None


def _graph() -> dict[str, set[str]]:
    modules = _modules(("imaging", "models"))
    known = set(modules)
    # a package's __init__ is not an edge target when the import names a module inside it
    return {name: {m for m in _imports(path, known) if m != name} for name, path in modules.items()}


def test_every_imaging_module_belongs_to_a_stage():
    loose = [name for name in _modules(("imaging",)) if name.count(".") == 1 and name.split(".")[1] not in STAGE_RANK]
    assert loose == [], f"modules outside a stage subpackage: {loose}"


def test_stages_import_only_stages_below_them():
    wrong = []
    for module, targets in _graph().items():
        stage = _stage(module)
        if stage is None:
            continue
        for target in targets:
            other = _stage(target)
            if other is not None and other != stage and STAGE_RANK[other] >= STAGE_RANK[stage]:
                wrong.append(f"{module} imports {target}")
    assert wrong == [], "imports against the stage order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def _code_lines(lines: list[str], node: ast.AST) -> int:
    body = getattr(node, "body", [])
    skip: set[int] = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i in range(node.lineno, node.end_lineno + 1)
               if i not in skip and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))


def test_modules_and_functions_are_small():
    too_long: list[str] = []
    for name, path in _modules().items():
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(REPO)}: module of {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(lines, node)
                if n > MAX_FUNCTION_CODE_LINES:
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines of code")
    assert too_long == [], "split these into named steps:\n" + "\n".join(too_long)


@pytest.mark.parametrize("module", ["imaging", "models", "imaging.cli.main"])
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
