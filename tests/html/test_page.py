import base64
import hashlib
import json
import re

from reportdata import SCRIPT_CLASS, XSS_CLASS, XSS_LAYER

from epochscope.html.page import render_page


def test_page_is_self_contained(report_file):
    text = report_file.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # No reference to anything outside the file.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<script src" not in text and "<link rel=\"stylesheet\"" not in text
    assert text.count("<script") == 2  # the JSON data and the viewer


def test_csp_allows_only_the_viewer_script(report_file):
    text = report_file.read_text(encoding="utf-8")
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in csp and "unsafe-eval" not in csp
    digest = re.search(r"'sha256-([^']+)'", csp).group(1)
    script = text.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    assert base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() == digest


def test_run_text_never_appears_as_markup(report_file):
    text = report_file.read_text(encoding="utf-8")
    for nasty in (XSS_CLASS, XSS_LAYER, "<b>three</b>", "</script><script>alert(2)"):
        assert nasty not in text
    assert "\u2028" not in text
    data = text.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0]
    payload = json.loads(data)
    assert XSS_CLASS in payload["classNames"] and SCRIPT_CLASS in payload["classNames"]
    assert "&lt;svg onload=alert(3)&gt;" in text.split("<title>", 1)[1].split("</title>", 1)[0]


def test_placeholders_inside_the_data_are_not_replaced():
    payload = {"title": "__SCRIPT__ __STYLE__", "info": {"layer": "__DATA__"}, "x": "__TITLE__"}
    text = render_page(payload)
    data = json.loads(text.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    assert data == payload


def test_every_viewer_module_is_joined_once_in_order():
    from importlib import resources

    from epochscope.html.page import LINK_MODULE, LIVE_MODULE, TEST_HOOK_MODULE, VIEWER_MODULES, viewer_script

    folder = resources.files("epochscope.html").joinpath("viewer")
    on_disk = sorted(p.name for p in folder.iterdir() if p.name.endswith(".js"))
    every = (*VIEWER_MODULES, LIVE_MODULE, LINK_MODULE, TEST_HOOK_MODULE)
    assert on_disk == sorted(every)  # no module left out of the page
    script = viewer_script(test_hook=True, live=True, linked=True)
    at = [script.index(f"// ---- viewer/{name}\n") for name in every]
    assert at == sorted(at) and all(script.count(f"// ---- viewer/{n}\n") == 1 for n in on_disk)
    assert script.startswith("// epochscope report viewer") and script.rstrip().endswith("})();")
    # One function scope: no module may declare a name another declares (a later one would throw).
    names = re.findall(r"^(?:const|let|function|async function)\s+([A-Za-z_$][\w$]*)", script, re.M)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_test_hook_only_when_asked():
    from epochscope.html.page import viewer_script

    assert "window.epochscope" not in viewer_script() and "window.epochscope" not in render_page({})
    assert "window.epochscope = {" in viewer_script(test_hook=True)
    assert "window.epochscope = {" in render_page({}, test_hook=True)


def test_viewer_sets_run_text_only_as_text():
    """The viewer builds no markup from data: no innerHTML & co., so a name can only ever be text."""
    from epochscope.html.page import viewer_script

    js = viewer_script(test_hook=True, live=True, linked=True)
    code = re.sub(r"//[^\n]*", "", js)  # comments may name what the code avoids
    for sink in (r"\.innerHTML\b", r"\.outerHTML\b", r"insertAdjacentHTML", r"document\.write", r"\beval\(",
                 r"new Function", r"setAttribute\(\s*[\"']on", r"srcdoc"):
        assert not re.search(sink, code), sink
    assert "textContent" in js
