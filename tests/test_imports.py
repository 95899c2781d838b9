"""Imports flow one way: each layer imports only the layers below it, and no module imports itself
back through others. Read from the source (every `import` and `from ... import`, at the top of a file
or inside a function), so a deferred import cannot hide a wrong-way arrow.

    core      imports nothing of the project
    audio     -> core
    models    -> models.base, models.weights, core      (a family never imports another family)
    serving   -> models, audio, core
    training  -> serving, models, audio, core
    ui        -> serving, audio, core                    (the only code that imports gradio)
    cli, bench, app.py on top
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS = {
    "studio.core": set(),
    "studio.audio": {"studio.core"},
    "models": {"studio.core"},
    "studio.serving": {"studio.core", "studio.audio", "models"},
    "studio.training": {"studio.core", "studio.audio", "models", "studio.serving"},
    "studio.ui": {"studio.core", "studio.audio", "studio.serving"},
}
SHARED_MODELS = {"models.base", "models.weights"}  # what a family file may import of models/


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import of the project's own code in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return [(m, line) for m, line in found if m.split(".")[0] in ("studio", "models", "bench")]


def _layer(module: str) -> str | None:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)


def _sources() -> list[Path]:
    return sorted(p for folder in ("studio", "models") for p in (REPO / folder).rglob("*.py"))


def test_every_module_has_a_layer():
    loose = [_module(p) for p in _sources() if _layer(_module(p)) is None and _module(p) not in ("studio", "studio.__main__", "studio.cli")]
    assert not loose, f"modules outside the layers: {loose}"


def test_imports_flow_one_way():
    wrong = []
    for path in _sources():
        me = _module(path)
        mine = _layer(me)
        if mine is None:
            continue
        for target, line in _imports(path):
            theirs = _layer(target)
            if target.split(".")[0] == "bench" or target in ("studio", "studio.cli"):
                wrong.append(f"{me}:{line} imports {target} (bench and the CLI sit on top)")
            elif theirs is not None and theirs != mine and theirs not in LAYERS[mine]:
                wrong.append(f"{me}:{line} imports {target} ({mine} may import {sorted(LAYERS[mine]) or 'nothing of the project'})")
            elif (
                mine == "models"
                and target.startswith("models.")
                and me not in SHARED_MODELS
                and target != me
                and not any(target == s or target.startswith(s + ".") for s in SHARED_MODELS)
            ):
                wrong.append(f"{me}:{line} imports {target} (a family imports only models.base and models.weights)")
    assert not wrong, "\n".join(wrong)


def test_gradio_is_imported_by_the_ui_alone():
    users = [
        f"{_module(p)}:{line}"
        for p in _sources()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name, line in (
            [(a.name, node.lineno) for a in node.names] if isinstance(node, ast.Import) else [(node.module or "", node.lineno)]
        )
        if name.split(".")[0] == "gradio" and _layer(_module(p)) != "studio.ui"
    ]
    assert not users, users


def test_no_import_circle():
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in _sources()}
    for path in _sources():
        targets = set()
        for target, _line in _imports(path):
            while target and target not in modules:  # `from studio.core import midi` names the module studio.core.midi
                target = target.rpartition(".")[0]
            if target and target != _module(path):
                targets.add(target)
        graph[_module(path)] = targets
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)
