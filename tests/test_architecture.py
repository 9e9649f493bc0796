"""The rooms' one-way dependencies, pinned (docs/architecture.md explains them).

Walks every module's imports with :mod:`ast` (relative and absolute, at any depth, also
inside functions), so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "epochscope"

#: room -> rooms it must never import (a room is a top-level module or package of epochscope).
FORBIDDEN: dict[str, set[str]] = {
    "run": {"record", "maps", "draw", "html", "importers", "checking", "pipeline", "cli", "network", "analysis", "integrations"},
    "draw": {"maps", "record", "importers", "html", "pipeline", "cli", "checking", "integrations"},
    "html": {"maps", "record", "importers", "draw", "pipeline", "cli", "checking", "integrations"},
    "network": {"maps", "record", "importers", "draw", "html", "pipeline", "cli", "integrations"},
    "analysis": {"maps", "record", "importers", "draw", "html", "pipeline", "cli", "network", "integrations"},
    "colors": {"maps", "record", "importers", "draw", "html", "pipeline", "cli", "network", "run", "integrations"},
    "importers": {"draw", "html", "maps", "network", "pipeline", "cli", "record", "integrations"},
    "record": {"draw", "html", "maps", "importers", "pipeline", "cli", "network", "checking", "integrations"},
    "maps": {"draw", "html", "record", "importers", "pipeline", "cli", "network", "integrations"},
    "checking": {"draw", "html", "record", "importers", "pipeline", "cli", "integrations"},
    "metric_names": {"run", "record", "importers", "draw", "html", "maps", "pipeline", "cli", "integrations"},
    "weight_layout": {"record", "importers", "draw", "html", "maps", "pipeline", "cli", "network", "integrations"},
    # The integrations (notebook, TensorBoard, W&B) read runs and compose maps, pictures and the report;
    # they never record, import or check a run; only the command line imports them.
    "integrations": {"record", "importers", "checking", "cli"},
    "pipeline": {"cli", "integrations", "serve"},
    # The live view (epochscope serve) reads runs and composes maps and the report's viewer; it never
    # records, imports or draws; only the command line imports it. It asks checking whether a run is
    # damaged (checking.api.inspect: read only, the lock untouched) and never repairs one.
    "serve": {"record", "importers", "draw", "cli", "integrations", "pipeline"},
}
# No room below the command line imports the live view.
for _room in ("run", "draw", "html", "network", "analysis", "colors", "importers", "record", "maps", "checking",
              "metric_names", "weight_layout", "integrations"):
    FORBIDDEN[_room] = FORBIDDEN[_room] | {"serve"}

#: room -> third-party packages it must never import: the report, the colours, the shared counts,
#: the network model and the run directory are matplotlib-free (the report draws in the browser).
FORBIDDEN_PACKAGES = {room: {"matplotlib"} for room in ("html", "colors", "analysis", "network", "run", "weight_layout",
                                                        "metric_names")}

FRAMEWORKS = ("torch", "keras", "lightning", "pytorch_lightning", "tensorflow", "jax", "transformers")

#: The only modules that may import or name a framework: the adapters, and the example models,
#: training loop and demo that are written in PyTorch on purpose.
ADAPTERS = {
    "torch", "keras", "lightning", "transformers",       # epochscope.torch / .keras / .lightning / .transformers
    "record.torch", "record.keras", "record.lightning",   # the recorders
    "record.transformers",
    "importers.checkpoints",                             # reads PyTorch state_dict files (torch.load)
    "models", "train", "demo", "datasets",               # example models and loop, in PyTorch
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts) or "__init__", path))
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Absolute dotted names of everything ``path`` imports (epochscope.* and third-party)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(["epochscope", *base, *([node.module] if node.module else [])])
                found.add(target)
                if node.module is None:  # from . import x
                    found.update(f"{target}.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
    return found


def _room(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "epochscope" and len(parts) > 1 else None


MODULES = _modules()


def test_the_walk_sees_every_room():
    rooms = {name.split(".")[0] for name, _ in MODULES}
    assert {"run", "record", "maps", "draw", "html", "importers", "checking", "cli", "pipeline", "serve"} <= rooms
    # and it understands relative imports: draw imports the run through "..run"
    assert any(_room(t) == "run" for name, p in MODULES if name.startswith("draw.") for t in _imports(name, p))


@pytest.mark.parametrize("room", sorted(set(FORBIDDEN) | set(FORBIDDEN_PACKAGES)))
def test_rooms_import_only_downstream(room):
    bad = []
    for name, path in MODULES:
        if name.split(".")[0] != room:
            continue
        for target in _imports(name, path):
            if _room(target) in FORBIDDEN[room] or target.split(".")[0] in FORBIDDEN_PACKAGES.get(room, ()):
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_serve_takes_only_the_read_only_check_from_checking():
    """serve asks whether a run is damaged (``checking.api.inspect``) and never repairs: it imports
    nothing else of checking, and names neither ``check_run`` (whose pass asks the recorder's lock)
    nor repair."""
    bad = []
    for name, path in MODULES:
        if name.split(".")[0] != "serve":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            module = (node.module or "").removeprefix("epochscope.") if isinstance(node, ast.ImportFrom) else ""
            if isinstance(node, ast.Import) and any(a.name.startswith("epochscope.checking") for a in node.names):
                bad.append(f"{name}:{node.lineno} imports checking whole")
            if module.split(".")[0] == "checking":
                names = {alias.name for alias in node.names}
                if module != "checking.api" or names != {"inspect"}:
                    bad.append(f"{name}: from {module} import {', '.join(sorted(names))}")
            if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) in (
                    "check_run", "carry_out", "repair"):
                bad.append(f"{name}:{node.lineno} names {getattr(node, 'id', getattr(node, 'attr', ''))}")
    assert not bad, "\n".join(bad)


def test_only_adapters_import_a_framework():
    bad = []
    for name, path in MODULES:
        if name in ADAPTERS:
            continue
        for target in _imports(name, path):
            if target.split(".")[0] in FRAMEWORKS:
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def _framework_tests(source: str) -> list[str]:
    """Places where code compares a string with a framework's name (docstrings are not code)."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for const in [node.left, *node.comparators]:
                if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.lower() in FRAMEWORKS:
                    found.append(f"{node.lineno}: compares with {const.value!r}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "endswith"):
            for arg in ast.walk(node):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.lower() in FRAMEWORKS:
                    found.append(f"{node.lineno}: tests a name against {arg.value!r}")
    return found


def test_only_adapters_name_a_framework_in_code():
    """No module outside the adapters decides anything by a framework's name (e.g. testing
    ``run.framework == "keras"``)."""
    bad = [f"{name}:{where}" for name, path in MODULES if name not in ADAPTERS
           for where in _framework_tests(path.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def test_a_framework_test_is_caught():
    code = 'if run.framework.startswith(("keras", "tf")):\n    pass\nok = run.framework == "torch"\n'
    assert len(_framework_tests(code)) == 2


def test_a_forbidden_import_is_caught(tmp_path):
    """The walk itself can fail: a draw module that imports the maps is reported."""
    fake = tmp_path / "draw" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("from ..maps.api import embed\nimport torch\n")
    targets = _imports("draw.bad", fake)
    assert "epochscope.maps.api" in targets and "torch" in targets
