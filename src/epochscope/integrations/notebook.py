"""The report inline in a notebook: the self-contained page in an ``<iframe srcdoc=...>``.

Why a function returning an object, rather than a flag on :func:`epochscope.report`:
``report`` writes a file and returns its path, and a path is what scripts and the command
line want; a notebook wants an object that shows itself, as the Display objects do. So
:func:`show_report` takes the same arguments as ``report`` (less ``out``) and returns an
:class:`InlineReport`, whose ``_repr_html_`` Jupyter shows and whose :meth:`~InlineReport.save`
writes the same page to a file.

The page goes into the iframe's ``srcdoc`` attribute, HTML-escaped (``&``, ``<``, ``>``, ``"``
and ``'``), so no character of the page can close the attribute or the iframe; the browser
unescapes it back into exactly the page :func:`epochscope.report` writes. The iframe is
sandboxed (``allow-scripts`` only): the viewer runs, but in an origin of its own, with no
access to the notebook page. The page keeps its own Content-Security-Policy (no network).

The page is stored in the notebook file with the cell's output, so its size matters: the
size is logged, and ``max_points`` shows a fixed random subset of the points as in
:func:`epochscope.report`.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ..run import Run, open_run
from ._maps import maps_for

__all__ = ["InlineReport", "show_report", "iframe_html"]

log = logging.getLogger("epochscope")

#: Default iframe height in CSS pixels: the viewer's map (at most 760 px) with its controls.
DEFAULT_HEIGHT = 900


def iframe_html(page: str, *, height: int = DEFAULT_HEIGHT, title: str = "epochscope report") -> str:
    """``page`` (a whole HTML document) as one sandboxed ``<iframe srcdoc=...>`` element.

    >>> iframe_html('<p title="a&b">x</p>', height=200)[:62]
    '<iframe srcdoc="&lt;p title=&quot;a&amp;b&quot;&gt;x&lt;/p&gt;'
    """
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise ValueError(f"height must be a positive number of pixels, got {height!r}; e.g. height=900")
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" title="{html.escape(title, quote=True)}" '
            f'sandbox="allow-scripts" style="width:100%;height:{height}px;border:1px solid #ddd" '
            f'height="{height}"></iframe>')


class InlineReport:
    """The interactive report as a notebook output: the last expression of a cell shows it.

    Attributes
    ----------
    page : the whole HTML page (the text :func:`epochscope.report` writes to a file).
    height : the iframe's height in CSS pixels.

    Example::

        view = epochscope.show_report(run, method="pca")
        view                      # shown inline
        view.save("report.html")  # the same page as a file
    """

    def __init__(self, page: str, *, height: int = DEFAULT_HEIGHT, title: str = "epochscope report") -> None:
        iframe_html("", height=height)  # checks height before anything is shown
        self.page = page
        self.height = height
        self.title = title

    def __repr__(self) -> str:
        return f"InlineReport({len(self.page.encode('utf-8')) / 1e6:.1f} MB, height={self.height})"

    def _repr_html_(self) -> str:
        return iframe_html(self.page, height=self.height, title=self.title)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (an ``.html`` file; written under a temporary name and renamed)."""
        from ..html.report import check_report_path

        path = check_report_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(self.page, encoding="utf-8")
        os.replace(tmp, path)
        return path


def show_report(run: Run | str | os.PathLike[str], *, layer: str | None = None, method: str = "umap",
                maps: Any = None, max_points: int | None = None, height: int = DEFAULT_HEIGHT,
                progress: bool = True, **embed_options: Any) -> InlineReport:
    """The interactive report of ``run``, to show inline in a notebook.

    The same page as :func:`epochscope.report` (same arguments, less ``out``), returned as an
    :class:`InlineReport` instead of written to a file.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    layer, method : the layer to map and how (as for :func:`epochscope.embed`).
    maps : maps already computed (:func:`epochscope.embed`); otherwise they are embedded, or
        read from the run's cache.
    max_points : show at most this many probe (and test) points, a fixed random subset;
        ``None`` shows all. The page is saved in the notebook with the output.
    height : the iframe's height in CSS pixels.
    progress : show progress bars while maps are fitted.
    **embed_options : passed to :func:`epochscope.embed` (not allowed together with ``maps``).

    Raises ``ValueError`` for a bad ``height`` or ``max_points`` before anything is embedded.

    Example::

        maps = epochscope.embed(run, "hidden", method="pca")
        epochscope.show_report(run, maps=maps)
    """
    from ..html.report import write_report

    iframe_html("", height=height)
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}; e.g. max_points=5000")
    if not isinstance(run, Run):
        run = open_run(run)
    maps = maps_for(run, layer=layer, method=method, maps=maps, progress=progress, options=embed_options)
    with tempfile.TemporaryDirectory(prefix="epochscope-report-") as tmp:
        path = write_report(run, maps, Path(tmp) / "report.html", layer=maps.layer, method=maps.method,
                            max_points=max_points)
        page = path.read_text(encoding="utf-8")
    log.info("inline report of %r: %.1f MB (stored in the notebook with the output)", maps.layer,
             len(page.encode("utf-8")) / 1e6)
    return InlineReport(page, height=height, title=f"epochscope report: {maps.layer}")
