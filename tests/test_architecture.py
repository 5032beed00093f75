"""The layering rules, as tests: the stages speak only through `shared/`, stage 2's packages import
only the packages their rule allows, and no module imports itself back through others.

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
    return {
        module_name(p): p
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for p in sorted((ROOT / package).rglob("*.py"))
    }


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
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
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
    assert "stage2_train.training.train" in GRAPH and "shared.layouts" in GRAPH["stage2_train.models.graph"]


def test_stage2_imports_nothing_from_stage1():
    offenders = {
        m: sorted(d for d in deps if stage(d) == "stage1_extract")
        for m, deps in GRAPH.items()
        if stage(m) == "stage2_train"
    }
    assert not {m: d for m, d in offenders.items() if d}


@pytest.mark.parametrize("forbidden", ["stage1_extract", "stage2_train", "mmcl"])
def test_shared_imports_no_stage(forbidden):
    offenders = {
        m: sorted(d for d in deps if stage(d) == forbidden) for m, deps in GRAPH.items() if stage(m) == "shared"
    }
    assert not {m: d for m, d in offenders.items() if d}


# Stage 2's parts: the stage-2 packages (and top-level modules) each part may import, besides itself and
# `shared`. The configs are torch-free leaves; the networks know the input pipeline they were trained
# with (`model_spec`), never how they are trained; the command line (`cli`) is imported by no part but the
# ablation, which drives `mmcl train` once per run.
STAGE2_ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "data": {"settings"},
    "models": {"settings", "data"},
    "training": {"settings", "data", "models", "evaluation"},
    "evaluation": {"settings", "data", "models", "training"},
    "deploy": {"settings", "data", "models", "training"},
    "transfer": {"settings", "data", "models", "training", "evaluation"},
    "ablation": {"settings", "training", "cli"},
    "cli": {"settings", "data", "models", "training", "evaluation", "deploy", "transfer"},
}


def stage2_part(module: str) -> str:
    """`stage2_train.models.fam` -> "models"; `stage2_train.cli` -> "cli"; the package itself -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rule_breaks(graph: dict[str, set[str]], allowed: dict[str, set[str]]) -> dict[str, list[str]]:
    """Stage-2 modules importing a stage-2 part their part's rule does not allow: {module: [imports]}."""
    breaks: dict[str, list[str]] = {}
    for module, deps in graph.items():
        if stage(module) != "stage2_train" or not (part := stage2_part(module)):
            continue
        bad = sorted(
            d
            for d in deps
            if stage(d) == "stage2_train"
            and stage2_part(d) not in {part, ""}
            and stage2_part(d) not in allowed.get(part, set())
        )
        if bad:
            breaks[module] = bad
    return breaks


def test_every_stage2_part_has_a_rule():
    parts = {stage2_part(m) for m in GRAPH if stage(m) == "stage2_train"} - {""}
    assert parts == set(STAGE2_ALLOWED), "a new stage-2 package needs its line in STAGE2_ALLOWED"


def test_rule_breaks_finds_one():
    graph = {
        "stage2_train.data.dataset": {"stage2_train.models.ctrgcn", "stage2_train.data.streams"},
        "stage2_train.models.ctrgcn": {"stage2_train.data.streams", "shared.layouts"},
    }
    assert rule_breaks(graph, STAGE2_ALLOWED) == {"stage2_train.data.dataset": ["stage2_train.models.ctrgcn"]}


def test_stage2_parts_import_only_what_their_rule_allows():
    assert not rule_breaks(GRAPH, STAGE2_ALLOWED)


@pytest.mark.parametrize(
    "part,forbidden",
    [
        ("data", "models"),
        ("models", "training"),
        ("models", "evaluation"),
        ("data", "training"),
        ("training", "deploy"),
        ("evaluation", "deploy"),
    ],
)
def test_named_rules_hold(part, forbidden):
    """The rules a newcomer is told: data imports no models, models no training loop or evaluation, ..."""
    assert forbidden not in STAGE2_ALLOWED[part]
    assert not {
        m
        for m, deps in GRAPH.items()
        if stage(m) == "stage2_train"
        and stage2_part(m) == part
        and any(stage2_part(d) == forbidden for d in deps if stage(d) == "stage2_train")
    }


def test_only_the_ablation_imports_the_command_line():
    importers = {m for m, deps in GRAPH.items() if "stage2_train.cli" in deps and stage(m) == "stage2_train"}
    assert importers == {"stage2_train.ablation.ablate"}


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
                return path[path.index(dep) :] + [dep]
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


def string_table(path: Path, name: str):
    """The literal value of the module-level assignment `name = {...}` in the file at `path`."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path}: no {name}")


def top_level_names(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} | {
        t.id
        for n in ast.parse(path.read_text()).body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }


def test_lazily_named_modules_are_in_this_tree():
    """The commands imported by name when called (to keep `--help` torch-free) name modules that exist
    here: a moved module would otherwise fail only when its command runs."""
    for module, _, _ in string_table(MODULES["mmcl.cli"], "SUBCOMMANDS").values():
        assert module in MODULES, f"mmcl.cli SUBCOMMANDS names {module}"
    for command, relative in string_table(MODULES["stage2_train.cli"], "_LAZY_COMMANDS").items():
        module = "stage2_train" + relative
        assert module in MODULES, f"stage2_train.cli _LAZY_COMMANDS names {module}"
        assert command in top_level_names(MODULES[module]), f"{module} defines no {command}"


ACCELERATE_PRIVATE = ("_shared_state", "_reset_state", "_original_forward")


def private_accelerate_uses(path: Path) -> set[str]:
    """`_name` attributes read from what the file imports from accelerate, and accelerate's private
    names spelled out anywhere (e.g. `getattr(model, "_original_forward")`)."""
    tree = ast.parse(path.read_text(), str(path))
    from_accelerate = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("accelerate")
        for alias in node.names
    }
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in ACCELERATE_PRIVATE or (
                node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in from_accelerate
            ):
                uses.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in ACCELERATE_PRIVATE:
            uses.add(node.value)
    return uses


def test_private_accelerate_uses_are_found(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from accelerate.state import AcceleratorState as S\nS._reset_state()\nS._other\n"
        "f = getattr(m, '_original_forward', m)\nm._private\n"
    )
    assert private_accelerate_uses(sample) == {"_reset_state", "_other", "_original_forward"}


def test_stage2_uses_public_accelerate_api_only():
    offenders = {
        m: uses for m, path in MODULES.items() if stage(m) == "stage2_train" and (uses := private_accelerate_uses(path))
    }
    assert not offenders


MAX_MODULE_LINES = 400  # a module past this holds more than one concept: split it


def test_no_module_is_over_400_lines():
    long = {m: n for m, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long
