"""The report room draws what it is given: it imports no room that computes maps, records or
imports runs, and no matplotlib (the report's colours and counts come from epochscope.colors
and epochscope.analysis, shared with the static pictures)."""

import ast
import subprocess
import sys
from pathlib import Path

import epochscope.html

HTML = Path(epochscope.html.__file__).parent
FORBIDDEN = ("epochscope.draw", "epochscope.maps", "epochscope.record", "epochscope.importers", "matplotlib")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against epochscope.html)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ["epochscope", "html"][: max(0, 2 - node.level + 1)] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def test_html_modules_import_no_other_room():
    files = sorted(HTML.glob("*.py"))
    assert {p.name for p in files} >= {"payload.py", "page.py", "report.py", "network.py"}
    bad = {p.name: sorted(m for m in imported_modules(p) if m.startswith(FORBIDDEN)) for p in files}
    assert {k: v for k, v in bad.items() if v} == {}
    assert "epochscope.analysis.confusion_split" in imported_modules(HTML / "payload.py")  # the parser sees imports


def test_writing_a_report_loads_no_other_room(report_run, tmp_path):
    """At run time too (an import inside a function would slip past a file scan of one module)."""
    run, maps = report_run
    np_path = tmp_path / "maps.npz"
    import numpy as np

    np.savez(np_path, coords=maps.coords, test_coords=maps.test_coords)
    code = f"""
import sys, numpy as np
import epochscope  # what the package itself loads is not the report's doing
before = set(sys.modules)
sys.path.insert(0, {str(Path(__file__).parent)!r})
from reportdata import FakeMaps
from epochscope.html.report import write_report
z = np.load({str(np_path)!r})
maps = FakeMaps({maps.epochs!r}, z["coords"], z["test_coords"], {{}}, {maps.bounds!r})
write_report({str(run.path)!r}, maps, {str(tmp_path / "r.html")!r}, layer="h", method="f")
print(" ".join(sorted(m for m in set(sys.modules) - before if m.startswith({FORBIDDEN!r}))))
print("matplotlib" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.html").exists() and done.stdout.split("\n")[:2] == ["", "False"]


def test_the_runtime_check_sees_a_forbidden_import(tmp_path):
    """The check above can fail: loading the static confusion picture is seen."""
    code = ("import sys, epochscope; before = set(sys.modules); import epochscope.draw.confusion; "
            f"print(' '.join(sorted(m for m in set(sys.modules) - before if m.startswith({FORBIDDEN!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "epochscope.draw" in done.stdout
