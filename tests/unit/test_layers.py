"""The package's shape stays what STYLE.md promises: layers, no hidden cycles, small parts.

The layer contract itself is import-linter's (pyproject.toml, run by `make lint`); these
tests check what it cannot: imports of project modules hidden inside functions, private
names imported across packages, and the size of modules and functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "authserver"

# Imports inside a function that are there on purpose, each with why.
FUNCTION_IMPORTS_ALLOWED = {
    # The app factory imports its packages and blueprints when it runs, as Flask's
    # tutorial does: importing `authserver` (or its config) must not import every view.
    ("__init__.py", "_init_extensions"),
    ("__init__.py", "_register_blueprints"),
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

# Modules and functions allowed past the limits, each with why.
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[tuple[str, str], str] = {}


def modules() -> Iterator[tuple[str, ast.Module, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(source), source


def package_of(relative: str) -> str:
    return relative.split("/", 1)[0].removesuffix(".py")


def absolute_module(relative: str, node: ast.ImportFrom) -> str:
    """The dotted name an import refers to, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    # The importing module's package: for a/b.py and a/__init__.py alike, authserver.a.
    parts = ["authserver", *relative.removesuffix(".py").split("/")][:-1]
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def project_imports(node: ast.AST, relative: str) -> Iterator[str]:
    for inner in ast.walk(node):
        if isinstance(inner, ast.ImportFrom):
            name = absolute_module(relative, inner)
            if name == "authserver" or name.startswith("authserver."):
                yield name
        elif isinstance(inner, ast.Import):
            for alias in inner.names:
                if alias.name.startswith("authserver"):
                    yield alias.name


def test_project_modules_are_imported_at_module_level() -> None:
    hidden = []
    for relative, tree, _ in modules():
        for function in functions(tree):
            if (relative, function.name) in FUNCTION_IMPORTS_ALLOWED:
                continue
            for name in project_imports(function, relative):
                hidden.append(f"{relative}:{function.lineno} {function.name} imports {name}")
    assert hidden == []


def test_no_private_name_is_imported_from_another_package() -> None:
    private = []
    for relative, tree, _ in modules():
        own = package_of(relative)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = absolute_module(relative, node)
            parts = module.split(".")
            if parts[0] != "authserver" or len(parts) < 2 or parts[1] == own:
                continue
            for alias in node.names:
                if alias.name.startswith("_"):
                    private.append(f"{relative}:{node.lineno} imports {module}.{alias.name}")
    assert private == []


def test_modules_stay_small() -> None:
    long = {
        relative: source.count("\n")
        for relative, _, source in modules()
        if source.count("\n") > MAX_MODULE_LINES and relative not in LONG_MODULES
    }
    assert long == {}


def test_functions_stay_small() -> None:
    long = {}
    for relative, tree, _ in modules():
        for function in functions(tree):
            lines = (function.end_lineno or function.lineno) - function.lineno + 1
            if lines > MAX_FUNCTION_LINES and (relative, function.name) not in LONG_FUNCTIONS:
                long[f"{relative}:{function.lineno} {function.name}"] = lines
    assert long == {}
