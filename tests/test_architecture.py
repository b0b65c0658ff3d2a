"""The package's layout is its architecture: each stage subpackage says in its docstring which
stages it may import (`May import: ...`), and the import graph, read from the code, obeys it: no
arrow up, no import circle, the networks know no dataset and the report reads run folders without
the data layer (not even through another module)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dsvdd_repro"
STAGES = ("core", "storage", "data", "models", "methods", "runs", "sweeps", "report")
ENTRY_POINTS = {"train", "score", "reproduce"}
NEVER = {"models": "data", "report": "data"}  # transitive: not even through another module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports (a name imported from a package counts as its module when
    it is one), lazy imports inside functions included."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules and name != module_name(path)}


GRAPH = {module_name(p): p for p in PACKAGE.rglob("*.py") if "conf" not in p.relative_to(PACKAGE).parts[:1]}
EDGES = {name: imports_of(path, set(GRAPH)) for name, path in GRAPH.items()}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def allowed(stage_name: str) -> set[str]:
    doc = ast.get_docstring(ast.parse((PACKAGE / stage_name / "__init__.py").read_text())) or ""
    match = re.search(r"^May import: (.*)$", doc, re.M)
    assert match, f"dsvdd_repro/{stage_name}/__init__.py: its docstring has no 'May import: ...' line"
    names = {name.strip() for name in match.group(1).split(",")} - {"nothing"}
    assert names <= set(STAGES), names
    return names | {stage_name}


def test_the_top_of_the_package_holds_only_entry_points_and_stages():
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == ENTRY_POINTS
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(STAGES) | {"conf"}


@pytest.mark.parametrize("stage_name", STAGES)
def test_a_stage_imports_only_what_its_docstring_allows(stage_name):
    rule = allowed(stage_name)
    for name, deps in EDGES.items():
        if stage(name) == stage_name:
            bad = {dep for dep in deps if stage(dep) not in rule}
            assert not bad, f"{name} imports {sorted(bad)}; dsvdd_repro/{stage_name} may import {sorted(rule)}"
    # the declared order is a strict layering: nothing may import a stage that imports it back
    assert all(stage_name not in allowed(other) for other in rule - {stage_name})


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in EDGES[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_circle():
    circles = sorted(f"{a} <-> {b}" for a in EDGES for b in EDGES[a] if a in reachable(b))
    assert not circles, circles


@pytest.mark.parametrize(("stage_name", "forbidden"), sorted(NEVER.items()))
def test_the_networks_know_no_dataset_and_the_report_no_data_layer(stage_name, forbidden):
    for name in EDGES:
        if stage(name) == stage_name:
            reached = sorted(dep for dep in reachable(name) if stage(dep) == forbidden)
            assert not reached, f"{name} reaches {reached}"
