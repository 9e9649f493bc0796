"""Issue 14, kind 8: text from a run never drives the terminal.

Class, layer, metric and framework names are whatever was recorded; escape sequences in them
(window title, clear screen, clipboard write) used to reach the terminal raw through ``info``,
``check`` and ``embed``. Every command prints through one helper that shows control characters
escaped, and so does the command line's log handler.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from epochscope._text import printable
from epochscope.run import RunWriter

TITLE = "\x1b]0;pwned\x07"          # sets the window title
CLEAR = "\x1b[2J\x1b[H"              # clears the screen
CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x07"  # writes the clipboard
BIDI = "cat\u202egod"                # shown reversed


@pytest.fixture
def hostile_run(tmp_path):
    path = tmp_path / "run"
    names = [f"cat{TITLE}", f"dog{CLEAR}", BIDI]
    with RunWriter.open(path, framework=f"torch{CLIPBOARD}", labels=np.arange(30) % 3, class_names=names) as w:
        w.declare_layer(f"hidden{CLEAR}", (4,), 4, None)
        with w.epoch(0) as ep:
            ep.set_activations(f"hidden{CLEAR}", np.random.default_rng(0).normal(size=(30, 4)))
            ep.set_metrics({f"loss{TITLE}": 0.5})
    with RunWriter.open(path, framework="t", labels=np.arange(30) % 3, class_names=names) as w:
        w.declare_layer(f"late{TITLE}", (3,), 3, None)  # added on resume: check warns, naming it
        with w.epoch(1) as ep:
            ep.set_activations(f"hidden{CLEAR}", np.random.default_rng(1).normal(size=(30, 4)))
            ep.set_activations(f"late{TITLE}", np.random.default_rng(2).normal(size=(30, 3)))
            ep.set_metrics({f"loss{TITLE}": 0.5})
    return path


def epochscope(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "epochscope", *map(str, argv)], capture_output=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def assert_no_control_characters(data: bytes) -> str:
    text = data.decode("utf-8")
    raw = sorted({c for c in text if c not in "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c == "\u202e")})
    assert not raw, f"control characters reached the terminal: {raw!r}\n{text}"
    return text


def test_info_check_and_embed_show_control_characters_escaped(hostile_run):
    info = epochscope("info", hostile_run)
    assert info.returncode == 0, info.stderr
    text = assert_no_control_characters(info.stdout + info.stderr)
    assert "cat\\x1b]0;pwned\\x07" in text and "torch\\x1b]52;c;ZWNobyBoaQ==\\x07" in text and "cat\\u202egod" in text
    assert "hidden\\x1b[2J\\x1b[H" in text and "loss\\x1b]0;pwned\\x07=0.5" in text

    check = epochscope("check", hostile_run)
    text = assert_no_control_characters(check.stdout + check.stderr)
    assert check.returncode == 0 and "layer 'late\\x1b]0;pwned\\x07' has outputs from epoch 1 on only" in text

    embed = epochscope("embed", hostile_run, "--layer", f"hidden{CLEAR}", "--method", "pca")
    text = assert_no_control_characters(embed.stdout + embed.stderr)
    assert embed.returncode == 0 and "maps of layer 'hidden\\x1b[2J\\x1b[H'" in text

    typo = epochscope("embed", hostile_run, "--layer", "hiden", "--method", "pca")  # the error lists the names
    text = assert_no_control_characters(typo.stdout + typo.stderr)
    assert typo.returncode == 2 and "did you mean 'hidden\\x1b[2J\\x1b[H'" in text


def test_printable_escapes_controls_and_keeps_text():
    assert printable(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert printable("tab\there\nnew") == "tab\\there\\nnew"
    assert printable("line\nbreak", keep="\n") == "line\nbreak"
    assert printable("Zürich 東京 naïve café") == "Zürich 東京 naïve café"
    assert printable("\u200bhidden\u2028sep\x85") == "\\u200bhidden\\u2028sep\\x85"
    assert printable(printable(CLEAR)) == printable(CLEAR)  # idempotent: escaping twice changes nothing
