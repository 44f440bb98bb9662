"""The layout of `localcloud/`: the emulator never imports the project's Lambda code (it runs the handlers
from the synthesized asset), its services do not import each other in a cycle, and modules stay short."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

LOCALCLOUD = Path(__file__).resolve().parents[3] / "localcloud"
STORIES = LOCALCLOUD / "demo"
MAX_MODULE_LINES = 700


def modules() -> Iterator[Path]:
    yield from sorted(LOCALCLOUD.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (absolute imports only)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    return imported


def room(path: Path) -> str:
    """The sub-package (or top-level module) of `localcloud/` that `path` belongs to."""
    relative = path.relative_to(LOCALCLOUD)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_only_the_stories_import_the_lambda_code() -> None:
    offenders = {
        str(path.relative_to(LOCALCLOUD)): sorted(
            name for name in imported_modules(path) if name == "lambdas" or name.startswith("lambdas.")
        )
        for path in modules()
        if not path.is_relative_to(STORIES)
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_emulator_does_not_import_the_stories() -> None:
    offenders = [
        str(path.relative_to(LOCALCLOUD))
        for path in modules()
        if not path.is_relative_to(STORIES)
        and any(name.startswith("localcloud.demo") for name in imported_modules(path))
    ]
    assert offenders == []


def test_no_room_imports_one_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for path in modules():
        targets = {name.split(".")[1] for name in imported_modules(path) if name.startswith("localcloud.")}
        graph.setdefault(room(path), set()).update(targets - {room(path)})
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for target in sorted(graph.get(node, set())):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            else:
                visit(target, [*trail, target])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(path.relative_to(LOCALCLOUD)): length
        for path in modules()
        if (length := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
