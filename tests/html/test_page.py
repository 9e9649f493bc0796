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
