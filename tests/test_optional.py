"""A missing extra says which ``pip install`` to run, whichever door the user came in by, before
any slow work. Each case runs in a fresh interpreter with the extra's modules blocked
(``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed), so the
checks hold in the full environment and in the core-only one alike."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from epochscope._errors import CompileCacheError
from epochscope._optional import import_compiled, require

CASES = {
    # door: (blocked modules, code, the extra the message must name)
    "torch recorder": (["torch"], "import epochscope.torch", "torch"),
    "keras recorder": (["keras"], "import epochscope.keras", "keras"),
    # Lightning needs torch too: one install of the lightning extra brings both.
    "lightning without torch": (["torch", "lightning"], "import epochscope.lightning", "lightning"),
    "lightning alone missing": (["lightning"], "import epochscope.lightning", "lightning"),
    # The transformers extra brings torch too.
    "transformers without torch": (["torch", "transformers"], "import epochscope.transformers", "transformers"),
    "transformers alone missing": (["transformers"], "import epochscope.transformers", "transformers"),
    # The default maps need numba (their own cached kernels), not umap-learn; the classic recipe needs umap-learn.
    "umap maps": (["numba"], "import numpy as np, epochscope\n"
                  "from epochscope.maps.api import embed\n"
                  "embed(RUN, 'hidden', method='umap', progress=False)", "maps"),
    "classic umap maps": (["umap"], "import numpy as np, epochscope\n"
                          "from epochscope.maps.api import embed\n"
                          "embed(RUN, 'hidden', method='umap-independent', progress=False)", "maps"),
    "mp4": (["imageio_ffmpeg"], "import numpy as np\n"
            "from epochscope.draw.animate import write_animation\n"
            "write_animation([np.zeros((8, 8, 3), np.uint8)], OUT + '/a.mp4')", "video"),
    # The demo trains for minutes before it draws: what the drawing needs is asked first.
    "demo without umap": (["umap"], "from epochscope.demo import run_demo\n"
                          "run_demo(OUT + '/demo', dataset='iris', epochs=1, show_progress=False)", "demo"),
    "text demo without transformers": (["transformers"], "from epochscope.demo import run_demo\n"
                                       "run_demo(OUT + '/demo', dataset='text', epochs=1, show_progress=False)",
                                       "demo,transformers"),
    "demo without torch": (["torch"], "from epochscope.demo import run_demo\n"
                           "run_demo(OUT + '/demo', dataset='iris', epochs=1, show_progress=False)", "demo"),
}

PROLOGUE = """
import sys
for name in BLOCKED:
    sys.modules[name] = None
sys.path.insert(0, TESTS)
"""


@pytest.mark.parametrize("case", list(CASES))
def test_a_missing_extra_names_the_pip_install(case, tmp_path, synthetic_run):
    from pathlib import Path

    blocked, code, extra = CASES[case]
    script = (f"BLOCKED = {blocked!r}\nTESTS = {str(Path(__file__).parent)!r}\nRUN = {str(synthetic_run)!r}\n"
              f"OUT = {str(tmp_path)!r}\n" + textwrap.dedent(PROLOGUE) + code)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, f"{case}: ran without the blocked {blocked}"
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("epochscope._errors.MissingDependencyError:"), last
    assert f"pip install 'epochscope[{extra}]'" in last, last
    assert not (tmp_path / "demo" / "run").exists()  # the demo trained nothing it could not draw


def test_numba_without_a_cache_folder_is_one_line_that_says_what_to_do(tmp_path, monkeypatch):
    # A read-only install with a read-only home: numba's cache=True functions (umap-learn's,
    # epochscope's kernels) raise "cannot cache function ...: no locator available" on
    # import, which reached the user as a numba traceback.
    (tmp_path / "cached_kernels_mod.py").write_text(
        "raise RuntimeError(\"cannot cache function 'rdist': no locator available for file 'layouts.py'\")\n")
    (tmp_path / "other_failure_mod.py").write_text("raise RuntimeError('something else')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/read-only/numba")
    for load in (lambda: require("cached_kernels_mod", extra="maps"), lambda: import_compiled("cached_kernels_mod")):
        with pytest.raises(CompileCacheError, match="set NUMBA_CACHE_DIR to a writable folder") as info:
            load()
        assert "'/read-only/numba'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="something else") as info:
        import_compiled("other_failure_mod")
    assert not isinstance(info.value, CompileCacheError)


def test_the_maps_kernels_say_how_to_give_numba_a_cache_folder(monkeypatch):
    numba_caching = pytest.importorskip("numba.core.caching")
    from epochscope.maps import sgd

    def nowhere(self):
        raise PermissionError(13, "Permission denied", self.get_cache_path())

    monkeypatch.setattr(numba_caching._CacheLocator, "ensure_cache_path", nowhere)
    for name in ("epochscope.maps._sgd_kernels", "epochscope.maps._knn_kernels"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sgd, "_kernel", None)
    with pytest.raises(CompileCacheError, match="NUMBA_CACHE_DIR"):
        sgd.compiled_kernel()
    from epochscope.maps.knn import refine_knn

    with pytest.raises(CompileCacheError, match="NUMBA_CACHE_DIR"):
        refine_knn(np.zeros((20, 3), np.float32), np.zeros((20, 4), np.int32))
