"""Each integration imports its tool only when used: importing the modules loads none of them."""

from __future__ import annotations

import subprocess
import sys


def test_nothing_is_imported_until_used():
    code = ("import sys, epochscope, epochscope.integrations.wandb, epochscope.integrations.tensorboard, "
            "epochscope.integrations.notebook; print([m for m in ('wandb', 'tensorboard', 'matplotlib', 'IPython') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

