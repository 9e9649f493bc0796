"""The report room draws what it is given: at run time, writing a report loads no room that
computes maps, records or imports runs, and no matplotlib (the static import rules of every
room are pinned in tests/test_architecture.py)."""

import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("epochscope.draw", "epochscope.maps", "epochscope.record", "epochscope.importers", "matplotlib")


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
