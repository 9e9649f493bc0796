"""`epochscope check RUN [--repair] [--json]`: exit status, text and JSON."""

import json
import subprocess
import sys

from epochscope.cli import main
from epochscope.run import layer_key

KEY = f"{layer_key('hidden')}.npy"


def test_cli_exit_status_and_json(synthetic_run, capsys):
    assert main(["check", str(synthetic_run)]) == 0
    assert "healthy" in capsys.readouterr().out
    (synthetic_run / "epochs" / "000004" / "probe" / KEY).write_bytes(b"\x93NUMPY")
    assert main(["check", str(synthetic_run)]) == 1
    out = capsys.readouterr().out
    assert f"problem  epochs/000004/probe/{KEY}: unreadable array header" in out
    assert "would remove epochs/000004: damaged trailing epoch 4" in out
    assert main(["check", str(synthetic_run), "--repair", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["epochs"] == [0, 1, 2, 3] and doc["actions"][0]["done"]
    assert main(["check", str(synthetic_run.parent / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_console_script_runs_check(synthetic_run):
    proc = subprocess.run([sys.executable, "-m", "epochscope", "check", str(synthetic_run)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "healthy" in proc.stdout
