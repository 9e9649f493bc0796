"""The report, the maps and the pictures inline in Jupyter: escaping, a notebook run by a real kernel,
and the inline report in a real browser."""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import epochscope
from epochscope import open_run
from epochscope.integrations.notebook import InlineReport, iframe_html, show_report


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer unescapes them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


NASTY = ('<!doctype html><html><head><title>a "b" & \'c\'</title></head><body>'
         '<p title="x&quot;y">&amp;&lt;</p></iframe><script>var s = "</script>";</script></body></html>')


def test_the_page_goes_into_srcdoc_exactly_and_cannot_break_out():
    out = iframe_html(NASTY, height=300, title='t"<')
    tags = Tags(out).tags
    assert [t for t, _ in tags] == ["iframe"]  # nothing of the page is markup of the notebook
    attrs = tags[0][1]
    assert attrs["srcdoc"] == NASTY and attrs["title"] == 't"<'
    assert attrs["sandbox"] == "allow-scripts" and attrs["height"] == "300"
    assert out.count("<") == 2 and out.endswith("></iframe>")  # its own start and end tags only
    with pytest.raises(ValueError, match="height must be a positive number of pixels"):
        iframe_html(NASTY, height=0)


@pytest.fixture(scope="module")
def run_and_maps(tmp_path_factory):
    from synthetic import make_synthetic_run

    run = open_run(make_synthetic_run(tmp_path_factory.mktemp("nb") / "run"))
    return run, epochscope.embed(run, "hidden", method="pca", progress=False)


def test_show_report_is_the_report_page(run_and_maps, tmp_path):
    run, maps = run_and_maps
    written = epochscope.report(run, tmp_path / "report.html", method="pca", progress=False).read_text(encoding="utf-8")
    view = show_report(run, method="pca", progress=False)
    assert view.page == written
    assert Tags(view._repr_html_()).tags[0][1]["srcdoc"] == written
    assert show_report(run, maps=maps).page == written
    assert view.save(tmp_path / "saved.html").read_text(encoding="utf-8") == written
    assert "MB" in repr(view)


def test_show_report_checks_its_arguments_first(run_and_maps):
    run, maps = run_and_maps
    with pytest.raises(ValueError, match="height"):
        show_report(run, maps=maps, height=-5)
    with pytest.raises(ValueError, match="max_points"):
        show_report(run, maps=maps, max_points=0)
    with pytest.raises(ValueError, match="maps are of layer 'hidden' but layer='other'"):
        show_report(run, maps=maps, layer="other")
    with pytest.raises(TypeError, match="embedding options"):
        show_report(run, maps=maps, n_neighbors=5)
    with pytest.raises(ValueError, match="e.g. out='report.html'"):
        InlineReport("<html></html>").save("report.txt")


def _outputs(cell) -> dict[str, object]:
    """mimetype -> data of a cell's execute_result / display_data outputs."""
    data = {}
    for out in cell.outputs:
        assert out.output_type != "error", "\n".join(out.get("traceback", []))
        data.update(out.get("data", {}))
    return data


def test_a_notebook_executed_headlessly_shows_everything_inline(run_and_maps, tmp_path):
    """A notebook run by a real IPython kernel (nbclient + ipykernel), as Jupyter runs it."""
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient")
    pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel")
    from PIL import Image

    run, maps = run_and_maps
    page = epochscope.report(run, tmp_path / "report.html", method="pca", progress=False).read_text(encoding="utf-8")
    cells = [
        f"import epochscope\nrun = epochscope.open_run({str(run.path)!r})",
        "maps = epochscope.embed(run, 'hidden', method='pca', progress=False)\nmaps",
        "epochscope.Timelapse.from_run(run, maps, progress=False)",
        "epochscope.MapDisplay.from_run(run, maps, epoch=2)",
        "epochscope.CurvesDisplay.from_run(run).plot()",
        "epochscope.show_report(run, maps=maps, height=640)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # The kernel imports the epochscope under test (this checkout), whatever is installed.
    src = str(Path(epochscope.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_WAIT_POLICY": "PASSIVE"}
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    outputs = [_outputs(c) for c in nb.cells]

    maps_html = outputs[1]["text/html"]
    assert "<svg" in maps_html and maps_html.count("<circle") == len(run.labels)
    assert "layer <code>hidden</code> · pca" in maps_html and maps_html.count("<tr>") == 1 + len(run.epochs)

    lapse_html = outputs[2]["text/html"]
    gif_b64 = lapse_html.split("data:image/gif;base64,", 1)[1].split('"', 1)[0]
    gif = Image.open(io.BytesIO(base64.b64decode(gif_b64)))
    assert gif.n_frames == len(run.epochs)
    frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(outputs[3]["image/png"]))))
    assert gif.size == (frame.shape[1], frame.shape[0]) and f'width="{gif.size[0]}"' in lapse_html
    assert Image.open(io.BytesIO(base64.b64decode(outputs[2]["image/png"]))).size == gif.size  # its last frame too
    assert frame.shape[2] == 3 and len(np.unique(frame.reshape(-1, 3), axis=0)) > 10  # a drawn map, not a blank

    curves = Image.open(io.BytesIO(base64.b64decode(outputs[4]["image/png"])))
    assert curves.size[0] > 300 and curves.size[1] > 150

    report_html = outputs[5]["text/html"]
    (tag, attrs), = Tags(report_html).tags
    assert tag == "iframe" and attrs["srcdoc"] == page and attrs["height"] == "640"


@pytest.mark.browser
def test_the_inline_report_runs_in_a_browser(run_and_maps, tmp_path):
    """The iframe as a notebook page holds it: the sandboxed viewer starts and draws its map."""
    from epochscope.html.headless import chromium_context, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"browser tests need headless Chromium: {reason}")
    run, maps = run_and_maps
    host = tmp_path / "notebook.html"
    host.write_text("<!doctype html><html><body><h1>notebook</h1>"
                    + show_report(run, maps=maps, height=700)._repr_html_() + "</body></html>", encoding="utf-8")

    def look():
        with chromium_context() as ctx:
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(host.as_uri())
            frame = page.frames[1]
            frame.wait_for_function("() => document.querySelector('#epoch-label').textContent.includes('epoch')")
            inked = frame.evaluate("""() => { const c = document.querySelector('#map');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
                return n; }""")
            parent = frame.evaluate("() => { try { return window.parent.document.title; } catch (e) { return 'blocked'; } }")
            return inked, parent, errors

    # Playwright's sync API refuses a thread whose event loop another test's session-wide browser
    # (tests/html) is running; a thread of its own has none.
    with ThreadPoolExecutor(max_workers=1) as pool:
        inked, parent, errors = pool.submit(look).result(timeout=120)
    assert inked > 100  # points drawn
    assert parent == "blocked"  # the sandbox keeps the report away from the notebook page
    assert errors == []
