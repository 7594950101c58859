"""The package's layers: wings import only wings below them, and no module imports itself back.

Order, lowest first (docs/architecture.md): the top-level ``errors`` and
``devices``, then ``spectra``, ``curriculum``, ``model``, ``training``,
``analysis``, ``cli``. Every ``import`` counts, those under ``TYPE_CHECKING``
and inside functions too: a lower wing that needs a higher one is a wrong
layout, whenever the import runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "curriculum_cli"
WINGS = ("spectra", "curriculum", "model", "training", "analysis", "cli")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its code)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def _level(module: str) -> int:
    """0 for the top-level modules, then 1 + the wing's index."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in WINGS:
        return 1 + WINGS.index(parts[1])
    return 0


def test_every_module_is_in_a_wing_or_at_the_top():
    top = {"curriculum_cli", "curriculum_cli.__main__", "curriculum_cli.errors",
           "curriculum_cli.devices"}  # fmt: skip
    loose = [m for m in _imports() if _level(m) == 0 and m not in top]
    assert loose == []


def test_no_wing_imports_a_higher_wing():
    back = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        for target in targets
        if _level(module) != 0 and _level(target) > _level(module)
    ]
    top_up = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        for target in targets
        if _level(module) == 0 and module.rsplit(".", 1)[-1] in ("errors", "devices")
        and _level(target) > 0
    ]  # fmt: skip
    assert back + top_up == []


def test_no_import_cycle():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [node, target]))
            elif target not in state:
                visit(target, path + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []
