"""The package's floors (DESIGN.md "Layout"), checked on the source text: every import, also one
inside a function, goes to the same floor or a lower one; no import loops; files and functions
small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "cnnzoo"

# Lowest first. A module's floor is that of the longest prefix listed here.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("cnnzoo.errors", "cnnzoo.bounds", "cnnzoo.files", "cnnzoo.cache", "cnnzoo.version",
     "cnnzoo.precision", "cnnzoo.devices", "cnnzoo.runfolder", "cnnzoo.results",
     "cnnzoo.signals", "cnnzoo.display", "cnnzoo.outputs"),
    ("cnnzoo.data",),
    ("cnnzoo.modelfile", "cnnzoo.weights", "cnnzoo.hub"),
    ("cnnzoo.registry", "cnnzoo.features"),
    ("cnnzoo.contract", "cnnzoo.layers", "cnnzoo.models"),
    ("cnnzoo.analysis", "cnnzoo.train", "cnnzoo.transfer", "cnnzoo.deploy", "cnnzoo.visual",
     "cnnzoo.bench", "cnnzoo.ensemble", "cnnzoo.experiments"),
    ("cnnzoo.commands", "cnnzoo.cli", "cnnzoo.serve", "cnnzoo.__main__", "cnnzoo"),
)
# The two discoveries that may look upward: the registry loads models/, the CLI loads commands/.
DISCOVERY = {("cnnzoo.registry", "cnnzoo.models"), ("cnnzoo.cli", "cnnzoo.commands")}
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def floor(module: str) -> int:
    best, level = -1, None
    for i, names in enumerate(FLOORS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    if level is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS")
    return level


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = package[: len(package) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    # `from . import commands` names a module; `from .x import name` names the module x
    return [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, path, node))
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def _parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first; those edges are implied."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_floors(module):
    up = sorted(t for t in GRAPH[module] if floor(t) > floor(module)
                and (module, ".".join(t.split(".")[:2])) not in DISCOVERY
                and t not in _parents(module))
    assert not up, f"{module} (floor {floor(module)}) imports higher floors: {up}"


def test_no_import_loops():
    # Package __init__ files only re-export their own modules; following those edges back up
    # would report every package as a loop, so a module's own parents are left out.
    edges = {m: {t for t in ts if t not in _parents(m)} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                loop = stack[stack.index(t):] + [t]
                raise AssertionError("import loop: " + " -> ".join(loop))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_files_are_small_enough_to_read():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not big, f"files over {MAX_FILE_LINES} lines: {big}"


def test_functions_are_small_enough_to_read():
    long = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{m}.{node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_public_functions_are_typed():
    untyped = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        scopes = [tree] + [c for c in tree.body if isinstance(c, ast.ClassDef) and not c.name.startswith("_")]
        for scope in scopes:
            for node in scope.body:
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                if node.name.startswith("_") or any(
                        isinstance(d, ast.Name) and d.id in ("overload",) for d in node.decorator_list):
                    continue
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                if scope is not tree and args and args[0].arg in ("self", "cls"):
                    args = args[1:]
                missing = [a.arg for a in args if a.annotation is None]
                if node.returns is None or missing:
                    untyped.append(f"{m}.{node.name}" + (f" ({', '.join(missing)})" if missing else " (return)"))
    assert not untyped, f"public functions without full type hints: {untyped}"


# A normalisation constant has one home; everywhere else imports it by name.
NORMALISATION_HOME = "cnnzoo.data.preprocess"
NORMALISATION_VALUES = {0.485, 0.456, 0.406, 0.229, 0.224, 0.225}  # ImageNet's mean, std


def test_normalisation_constants_are_written_once():
    stray = sorted({f"{m}:{node.lineno}" for m, path in MODULES.items() if m != NORMALISATION_HOME
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Constant) and node.value in NORMALISATION_VALUES
                    and isinstance(node.value, float)})
    assert not stray, f"normalisation constants outside {NORMALISATION_HOME}: {stray}"


RUN_FOLDER_HOME = "cnnzoo.runfolder"


def _run_folder_names() -> set[str]:
    """The file names the run-folder module defines (its upper-case string constants)."""
    tree = ast.parse(MODULES[RUN_FOLDER_HOME].read_text())
    return {node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)}


def test_run_folder_file_names_are_written_once():
    names = _run_folder_names()
    assert {"model.safetensors", "checkpoint.safetensors", "metrics.csv"} <= names
    stray = sorted({f"{m}:{node.lineno} {node.value!r}" for m, path in MODULES.items() if m != RUN_FOLDER_HOME
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Constant) and node.value in names})
    assert not stray, f"run-folder file names outside {RUN_FOLDER_HOME}: {stray}"


def _unit(module: str) -> str:
    """What a package-level loop is about: cnnzoo.X for a subpackage's modules, a top module itself."""
    return ".".join(module.split(".")[:2])


def test_no_package_level_import_loops():
    # serve -> commands -> serve is a loop even when no single module imports back; the two
    # discoveries (registry -> models, cli -> commands) are the allowed upward edges
    edges: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        for t in targets:
            a, b = _unit(m), _unit(t)
            if a != b and (m, b) not in DISCOVERY and t not in _parents(m) and a != "cnnzoo":
                edges.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(p: str, path: list[str]) -> None:
        state[p] = 1
        for q in sorted(edges.get(p, ())):
            if state.get(q) == 1:
                raise AssertionError("package import loop: " + " -> ".join(path[path.index(q):] + [q]))
            if q not in state:
                visit(q, path + [q])
        state[p] = 2

    for p in sorted(edges):
        if p not in state:
            visit(p, [p])


MAX_COMMAND_FUNCTION_LINES = 40


def test_commands_are_thin():
    # a verb parses, calls one library function and prints: a longer function holds logic that
    # the Python API and serve would lack
    long = [f"{m}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for m, path in MODULES.items() if m.startswith("cnnzoo.commands")
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_COMMAND_FUNCTION_LINES]
    assert not long, f"commands/ functions over {MAX_COMMAND_FUNCTION_LINES} lines: {long}"
