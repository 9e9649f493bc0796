"""Run names with control characters: listed, shown escaped everywhere (each test failed before its fix).

A folder name is whatever the file system allows: an escape sequence (``\\x1b]0;...\\x07`` retitles a
terminal), a bidirectional override (``\\u202e`` shows ``cod.exe`` as ``exe.doc``), a line separator.
Such names reached the page, the viewer's titles and legends and the log as they were, and a name
with a C0 control character was left out of the list without a word. Now every name shows escaped,
as the command line shows it (``epochscope._text.printable``), and a run the server cannot name in an
address is listed with what to do.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from urllib.parse import quote

import pytest
from serveruns import make_run
from test_app import get, wait_ready

from epochscope._text import printable

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SERVED = ["bidi\u202egpj.exe", "c1\x85x", "sep\u2028x", "zw\u200bx"]  # reachable: shown escaped
REFUSED = "esc\x1b]0;pwned\x07"  # a C0 control: no address names it; listed with what to do


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


@pytest.fixture
def odd_logdir(tmp_path):
    root = tmp_path / "logs"
    for name in [*SERVED, REFUSED]:
        make_run(root / name, 2)
    make_run(root / "sweep" / "b", 2)
    return root


def _texts(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def test_every_run_is_listed_with_its_name_escaped(odd_logdir, live_server):
    server = live_server(odd_logdir)
    runs = wait_ready(server, [*SERVED, REFUSED])
    for name in SERVED:
        assert runs[name]["name"] == printable(name) and runs[name]["ready"], runs[name]
    refused = runs[REFUSED]
    assert refused["name"] == "esc\\x1b]0;pwned\\x07" and not refused["ready"]
    assert "control characters" in refused["error"] and "rename" in refused["error"]
    # Nothing the page shows as text holds a control character (paths are data: the page escapes them).
    for r in runs.values():
        for key in ("name", "status", "error"):
            assert not _controls(r[key] or ""), (key, r[key])


def test_the_viewer_and_the_answers_show_names_escaped(odd_logdir, live_server):
    server = live_server(odd_logdir)
    wait_ready(server, SERVED)
    name = SERVED[0]
    payload = json.loads(get(server, f"/payload.json?run={quote(name)}")[2])
    assert printable(name) in payload["title"] and payload["runName"] == printable(name)
    assert not _controls(payload["title"] + payload["runName"])
    # Side by side: the legends and the run names of the comparison.
    status, _, body = get(server, f"/payload.json?run={quote(name)}&run={quote(SERVED[1])}&i=1")
    both = json.loads(body)
    assert status == 200 and both["compare"]["runs"] == [printable(name), printable(SERVED[1])]
    series = [s["name"] for s in both["metrics"]["accuracy"]]
    assert any(s.endswith("· " + printable(name)) for s in series) and not _controls("".join(series))
    # A refusal names the run escaped, in JSON and in the frame's plain text.
    for route in ("/payload.json", "/view"):
        status, _, body = get(server, f"{route}?run={quote(REFUSED)}")
        text = body.decode("utf-8")
        assert status == 400 and "\\x1b" in text and not _controls(text.strip()), text


def test_the_log_shows_names_escaped(odd_logdir, caplog):
    """The embedder's log lines name the run escaped (the command line's handler escapes its own output;
    a program's own handler got the raw name)."""
    from epochscope.serve import Embedder

    with caplog.at_level(logging.DEBUG, logger="epochscope"):
        embedder = Embedder(odd_logdir, method="pca")
        while embedder.step():
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "epochscope"]
    assert any(printable(SERVED[0]) in line for line in lines), lines
    assert not any(_controls(line) for line in lines), lines


@pytest.mark.browser
def test_the_page_shows_names_escaped(odd_logdir, live_server, browser_context):
    server = live_server(odd_logdir)
    wait_ready(server, [*SERVED, REFUSED])
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    try:
        page.goto(server.url + "#run=" + quote(REFUSED, safe=""))
        page.wait_for_function("() => document.querySelectorAll('#runs tr').length === 6", timeout=30000)
        page.wait_for_function("() => document.querySelector('#view .waiting') !== null", timeout=30000)
        rows = page.inner_text("#runs")
        for name in [*SERVED, REFUSED]:
            assert printable(name) in rows
        waiting = page.inner_text("#view")
        assert printable(REFUSED) in waiting and "rename" in waiting
        # Every text and title of the page, the frames' titles included: no control character.
        shown = page.evaluate("""() => [document.body.innerText,
            ...Array.from(document.querySelectorAll('[title], [aria-label]')).flatMap((e) =>
                [e.getAttribute('title') || '', e.getAttribute('aria-label') || ''])].join(' ')""")
        assert not _controls(shown.replace("\n", " ").replace("\t", " ")), [c for c in _controls(shown)]
        # A name typed into the address that matches no run is shown escaped too.
        page.evaluate("() => { window.location.hash = '#run=' + encodeURIComponent('nothere\\u202eX'); }")
        page.wait_for_function("() => document.querySelector('#view').innerText.includes('nothere')")
        assert "nothere\\u202eX" in page.inner_text("#view")
    finally:
        page.close()
