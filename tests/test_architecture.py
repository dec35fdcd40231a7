"""The package's import structure: no import cycles, and no sibling imports hidden inside engine/core functions.

lint-imports checks the layers (ui -> engine -> core) but not cycles inside a layer. grimp sees every import
statement, including those inside functions, so a cycle cannot hide behind a lazy import. An import inside a
function is only allowed where it keeps torch & co. out of start-up (the target pulls them in when imported).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import grimp
import pytest

PACKAGE = "inpaint_studio"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
HEAVY = ("torch", "diffusers", "transformers", "compel", "accelerate")
# Modules the window and the command line import before any job runs: they must stay free of the HEAVY ones.
LIGHT = (
    "inpaint_studio.engine.catalog",
    "inpaint_studio.engine.context",
    "inpaint_studio.engine.devices",
    "inpaint_studio.engine.events",
    "inpaint_studio.engine.families",
    "inpaint_studio.engine.models",
    "inpaint_studio.engine.region",
    "inpaint_studio.engine.runner",
    "inpaint_studio.engine.schedulers",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every group of modules that import each other, directly or not."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))
    return groups


def import_cycles(graph: grimp.ImportGraph) -> list[str]:
    """One line per cycle: its modules, then the imports that close it (importer:line -> imported)."""
    out = []
    for group in strongly_connected(graph):
        if len(group) < 2:
            continue
        edges = []
        for importer in group:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(group)):
                lines = [d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)]
                edges.append(f"{importer}:{','.join(map(str, lines))} -> {imported}")
        out.append(f"{' <-> '.join(group)} ({'; '.join(edges)})")
    return sorted(out)


def test_the_cycle_finder_names_every_cycle_and_only_cycles() -> None:
    graph = grimp.ImportGraph()
    edges = [
        ("p.a", "p.b"),
        ("p.b", "p.c"),
        ("p.c", "p.a"),
        ("p.c", "p.d"),
        ("p.d", "p.e"),
        ("p.e", "p.d"),
        ("p.f", "p.a"),
    ]
    for line, (importer, imported) in enumerate(edges, 1):
        graph.add_import(importer=importer, imported=imported, line_number=line, line_contents=f"import {imported}")
    assert sorted(strongly_connected(graph)) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"], ["p.f"]]
    assert import_cycles(graph) == [
        "p.a <-> p.b <-> p.c (p.a:1 -> p.b; p.b:2 -> p.c; p.c:3 -> p.a)",
        "p.d <-> p.e (p.d:5 -> p.e; p.e:6 -> p.d)",
    ]


def test_the_package_has_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "Import cycles, imports inside functions included:\n" + "\n".join(cycles)


# ---- imports inside functions -----------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in_functions(path: Path, modules: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every inpaint_studio import that runs when a function is called.

    Nested functions are walked from each enclosing one too: callers deduplicate.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    for function in (node for node in ast.walk(tree) if isinstance(node, functions)):
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        yield node.lineno, alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                if base.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:  # `from package import module` imports the module
                    yield node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


@cache
def heavy_imports_of(module: str) -> tuple[str, ...]:
    """The HEAVY packages that importing `module` in a fresh interpreter loads."""
    code = f"import sys, {module}; print(*sorted(set({HEAVY!r}) & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    return tuple(result.stdout.split())


def test_engine_and_core_import_siblings_at_module_top(graph: grimp.ImportGraph) -> None:
    """A sibling import inside a function hides a dependency; it is only worth it to keep torch out of start-up."""
    hidden = []
    for layer in ("engine", "core"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            for line, target in sorted(set(imports_in_functions(path, set(graph.modules)))):
                if not heavy_imports_of(target):
                    hidden.append(f"{module_name(path)}:{line} imports {target}, which does not import torch")
    assert not hidden, "Move these imports to the top of their module:\n" + "\n".join(hidden)


def test_the_modules_the_window_needs_import_no_torch() -> None:
    heavy = {module: heavy_imports_of(module) for module in LIGHT}
    assert not any(heavy.values()), {module: found for module, found in heavy.items() if found}
