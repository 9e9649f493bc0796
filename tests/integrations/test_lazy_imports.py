"""Each integration imports its tool only when used; without it, the error names the install."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_nothing_is_imported_until_used():
    code = ("import sys, epochscope, epochscope.integrations.wandb, epochscope.integrations.tensorboard, "
            "epochscope.integrations.notebook; print([m for m in ('wandb', 'tensorboard', 'matplotlib', 'IPython') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"



def test_without_tensorboard_the_export_names_the_install(synthetic_run, tmp_path, monkeypatch, capsys):
    from epochscope import MissingDependencyError
    from epochscope.cli import main
    from epochscope.integrations.tensorboard import export_tensorboard

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'epochscope\[tensorboard\]'"):
        export_tensorboard(synthetic_run, tmp_path / "tb", progress=False)
    assert not (tmp_path / "tb").exists()
    assert main(["-q", "export", "tensorboard", str(synthetic_run), "--out", str(tmp_path / "tb")]) == 1
    assert "pip install 'epochscope[tensorboard]'" in capsys.readouterr().err
