"""A missing extra says which ``pip install`` to run, whichever door the user came in by, before
any slow work. Each case runs in a fresh interpreter with the extra's modules blocked
(``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed), so the
checks hold in the full environment and in the core-only one alike."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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
