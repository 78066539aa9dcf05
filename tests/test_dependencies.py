"""Every third-party module that the product packages import is declared in pyproject.toml, so that a clean
``pip install nnunetv2-paseg`` can import them: a module imported at a module's top level by a dependency of
[project], one imported only inside a function (where the code runs without it) at least by an extra."""
from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO_ROOT

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

PRODUCT_PACKAGES = ("nnunetv2_paseg", "point_tools", "dataset_conversion")
OWN_DISTRIBUTION = "nnunetv2-paseg"  # also maps "nnunetv2": its wheel adds a module to nnunetv2's trainer folder


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path) -> tuple[set[str], set[str]]:
    """(the [project] dependencies, the distributions of every extra), as normalised names."""
    project = tomllib.loads(pyproject.read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip())[0]) for r in requirements}

    extras = project.get("optional-dependencies", {}).values()
    return names(project.get("dependencies", [])), set().union(*map(names, extras))


def imports(folder: Path) -> dict[str, dict[str, bool]]:
    """{top-level module: {file: imported at the file's top level (not only inside functions)}} of the absolute
    imports in the .py files under ``folder``."""
    found: dict[str, dict[str, bool]] = {}

    def visit(node: ast.AST, path: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            modules = []
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                modules = [child.module]
            for module in modules:
                files = found.setdefault(module.split(".")[0], {})
                files[path] = files.get(path, False) or not in_function
            visit(child, path, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    for path in sorted(folder.rglob("*.py")):
        visit(ast.parse(path.read_text(), str(path)), str(path.relative_to(folder.parent)), False)
    return found


def undeclared(folders: list[Path], pyproject: Path, own_modules: set[str]) -> list[str]:
    """What is imported without being declared, one line per module."""
    required, optional = declared(pyproject)
    distributions = metadata.packages_distributions()
    problems = []
    merged: dict[str, dict[str, bool]] = {}
    for folder in folders:
        for module, files in imports(folder).items():
            merged.setdefault(module, {}).update(files)
    for module, files in sorted(merged.items()):
        if module in sys.stdlib_module_names or module in own_modules or module == "__future__":
            continue
        # An import that is not installed here can only be matched by its own name.
        candidates = {normalise(d) for d in distributions.get(module, [module])} - {OWN_DISTRIBUTION}
        at_top = sorted(f for f, top in files.items() if top)
        if at_top and not candidates & required:
            problems.append(f"{module} (distribution {', '.join(sorted(candidates))}), imported at the top of "
                            f"{', '.join(at_top)}: not in [project] dependencies")
        elif not at_top and not candidates & (required | optional):
            problems.append(f"{module} (distribution {', '.join(sorted(candidates))}), imported in functions of "
                            f"{', '.join(sorted(files))}: neither in [project] dependencies nor in an extra")
    return problems


def test_product_imports_are_declared():
    assert undeclared([REPO_ROOT / p for p in PRODUCT_PACKAGES], REPO_ROOT / "pyproject.toml",
                      set(PRODUCT_PACKAGES)) == []


def test_an_undeclared_import_is_found(tmp_path: Path):
    """The check can fail: pytest is only in the ``test`` extra, and json and the package itself are exempt."""
    package = tmp_path / "demo_pkg"
    package.mkdir()
    (package / "mod.py").write_text("import json\nimport pytest\nfrom demo_pkg import other\n\n\n"
                                    "def lazy():\n    import numpy\n    import pytest\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["numpy>=1"]\n'
                                             '[project.optional-dependencies]\ntest = ["pytest"]\n')
    problems = undeclared([package], tmp_path / "pyproject.toml", {"demo_pkg"})
    assert len(problems) == 1 and problems[0].startswith("pytest (distribution pytest), imported at the top of "
                                                         "demo_pkg/mod.py: not in [project] dependencies"), problems
