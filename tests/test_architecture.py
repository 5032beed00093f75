"""The layering rules, as tests: the stages speak only through `shared/`, and no module imports
itself back through others.

Imports are read from the source (every `import`, at module level or inside a function, since a
lazy import is still a dependency), so these tests need none of the packages installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mmcl", "shared", "stage1_extract", "stage2_train")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES if (ROOT / package).is_dir()
            for p in sorted((ROOT / package).rglob("*.py"))}


def imported(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules that the file at `path` (module `name`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod where there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` depends on the longest known prefix
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


MODULES = project_modules()
GRAPH = {name: imported(path, name, MODULES) for name, path in MODULES.items()}


def stage(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_is_read():
    assert "stage2_train.train" in GRAPH and "shared.layouts" in GRAPH["stage2_train.graph"]


def test_stage2_imports_nothing_from_stage1():
    offenders = {m: sorted(d for d in deps if stage(d) == "stage1_extract")
                 for m, deps in GRAPH.items() if stage(m) == "stage2_train"}
    assert not {m: d for m, d in offenders.items() if d}


@pytest.mark.parametrize("forbidden", ["stage1_extract", "stage2_train", "mmcl"])
def test_shared_imports_no_stage(forbidden):
    offenders = {m: sorted(d for d in deps if stage(d) == forbidden)
                 for m, deps in GRAPH.items() if stage(m) == "shared"}
    assert not {m: d for m, d in offenders.items() if d}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            # A package's __init__ re-exporting its own modules is not a cycle of concepts.
            if dep.startswith(node + "."):
                continue
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None
