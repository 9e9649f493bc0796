"""Bad input on the drawing side (embed, render, report): each case is a clear one-line error or
a picture, never a bare traceback from deep inside a library.

Every row of ``CASES`` is what a user gives and what they see, run through the command line
(``epochscope.cli.main``) exactly as typed. Runs are recorded through the framework-free
recording core (:class:`epochscope.record.core.RecordingSession`), so labels go through the
same encoding as with a real model. Maps use PCA where the map method is not the point; the
few UMAP rows are marked slow and share one module-scoped setup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from epochscope.cli import main
from epochscope.record.core import RecordingSession
from epochscope.record.settings import RecordSettings
from epochscope.run import open_run

NASTY_NAMES = ["../../x", "a/b", "<script>alert(1)</script>", "$x^2$", "$\\foo$", "&amp; & ;"]


def record_run(path: Path, labels, *, class_names=None, test_labels=None, n_epochs: int = 3, width: int = 8,
               layers=("hidden",), inputs: bool = True, metrics: Callable[[int], dict] | None = None,
               spoil: Callable[[int, str, str, np.ndarray], np.ndarray] | None = None, seed: int = 0) -> Path:
    """Record ``n_epochs`` epochs of a layer whose classes separate over time, with logits that
    grow more accurate, through the real recording core. ``spoil(epoch, layer, split, rows)``
    may change the rows before they are stored (NaN, Inf, ...)."""
    rng = np.random.default_rng(seed)
    n, n_test = len(labels), 0 if test_labels is None else len(test_labels)
    x = rng.random((n, 1, 6, 6)).astype(np.float32) if inputs else None
    x_test = rng.random((n_test, 1, 6, 6)).astype(np.float32) if inputs and n_test else None
    session = RecordingSession(RecordSettings(path, layers, class_names=class_names), probe_labels=labels,
                               framework="numpy", test_labels=test_labels, probe_inputs=x, test_inputs=x_test)
    try:
        k = len(session.class_names)
        centres = np.random.default_rng(1234).normal(size=(k, width)) * 4
        for epoch in range(n_epochs):
            t = epoch / max(n_epochs - 1, 1)
            with session.start_epoch() as rec:
                for split, codes in (("probe", session.labels), ("test", session.test_labels)):
                    if codes is None:
                        continue
                    outs = {}
                    for layer in layers:
                        rows = t * centres[codes] + rng.normal(size=(len(codes), width))
                        outs[layer] = rows if spoil is None else spoil(epoch, layer, split, rows)
                    logits = np.eye(k)[codes] * (1 + 3 * t) + rng.normal(size=(len(codes), k))
                    rec.add_batch(split, 0, outs, logits)
                rec.commit(metrics={"loss": 1 / (epoch + 1), "accuracy": 0.3 + 0.6 * t,
                                    **(metrics(epoch) if metrics else {})})
    finally:
        session.close()
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the command line; its exit status, stdout and stderr."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, command: str, pattern: str) -> None:
    """The error is one line, the last one; log lines said before it (a warning) may precede it."""
    assert rc == 2, err  # the user's input (1 is for the environment: disk, permissions)
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"epochscope {command}: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line, last, got:\n{err}"
    assert re.search(pattern, lines[-1]), f"{pattern!r} not in {lines[-1]!r}"
    assert "Traceback" not in err


def frame_files(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "frames").iterdir())


def gif_frames(path: Path) -> int:
    with Image.open(path) as im:
        return getattr(im, "n_frames", 1)


def colours_in(img: np.ndarray, colours: np.ndarray, tol: float = 30) -> int:
    """How many of ``colours`` (RGB in 0..1) appear as pixels of ``img`` (some pixels within ``tol``)."""
    px = img.reshape(-1, 3).astype(np.float32)[::3]
    return sum(bool((np.abs(px - c * 255).max(axis=1) < tol).any()) for c in colours)


# ---------------------------------------------------------------------------------------- the table


@dataclass
class Case:
    """One bad input: ``make(tmp)`` builds it and returns the path to give; ``argv`` is the command
    (``{run}`` and ``{out}`` are filled in); the user sees exit status ``rc`` and ``message``
    (a regular expression) on stderr (``rc == 1``) or in the log/stdout (``rc == 0``);
    ``check(run, out, text)`` looks at the pictures."""

    name: str
    make: Callable[[Path], Path]
    argv: tuple[str, ...]
    rc: int
    message: str
    check: Callable[[Path, Path, str], None] | None = None
    marks: list = field(default_factory=list)


def _labels(n: int = 30, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def make_nan_epochs(tmp: Path) -> Path:
    def spoil(epoch, layer, split, rows):
        if epoch == 2 and split == "probe":
            rows[3, 1] = np.nan
        if epoch == 3 and split == "test":
            rows[0, 0] = np.inf
        return rows

    return record_run(tmp / "run", _labels(), test_labels=_labels(9), n_epochs=5, spoil=spoil)


def check_nan_epochs(run: Path, out: Path, text: str) -> None:
    assert frame_files(out) == ["epoch_000.png", "epoch_001.png", "epoch_004.png"]
    assert gif_frames(out / "timelapse.gif") == 3
    assert "epoch 2: probe activations hold 1 NaN/Inf values" in text
    assert "epoch 3: test activations hold 1 NaN/Inf values" in text
    for name in ("curves.png", "confusion.png", "quality.png", "forgetting.png", "train_test_map.png"):
        assert (out / name).stat().st_size > 1000, name


def make_all_nan(tmp: Path) -> Path:
    return record_run(tmp / "run", _labels(), n_epochs=2, spoil=lambda e, lk, s, rows: rows * np.nan)


def make_one_class(tmp: Path) -> Path:
    return record_run(tmp / "run", np.array(["cat"] * 30), n_epochs=3)


def check_one_class(run: Path, out: Path, text: str) -> None:
    from epochscope.colors import class_colors

    assert open_run(run).class_names == ["cat"]
    frame = np.asarray(Image.open(out / "frames" / "epoch_002.png").convert("RGB"))
    assert colours_in(frame, class_colors(3)) == 1  # only the one class colour, no other tab10 colour
    assert gif_frames(out / "timelapse.gif") == 3
    assert (out / "confusion.png").exists()


def make_tiny(tmp: Path) -> Path:
    return record_run(tmp / "run", _labels(10), n_epochs=2)


def make_two_examples(tmp: Path) -> Path:
    return record_run(tmp / "run", np.array([0, 1]), n_epochs=2)


def labels_case(kind: str) -> Callable[[Path], Path]:
    y = _labels(30)
    given = {"strings": np.array(["eel", "cat", "dog"])[y], "one-hot": np.eye(3)[y],
             "floats": y.astype(np.float64)}[kind]
    return lambda tmp: record_run(tmp / "run", given, test_labels=given[:9], n_epochs=3)


def check_three_classes(names: list[str]) -> Callable[[Path, Path, str], None]:
    def check(run: Path, out: Path, text: str) -> None:
        from epochscope.colors import class_colors

        r = open_run(run)
        assert r.class_names == names
        first = [2, 0, 1] if names == ["cat", "dog", "eel"] else [0, 1, 2]  # "eel", "cat", "dog" come first
        assert r.labels.tolist()[:3] == first
        frame = np.asarray(Image.open(out / "frames" / "epoch_002.png").convert("RGB"))
        assert colours_in(frame, class_colors(3)) == 3
    return check


def make_many_classes(k: int) -> Callable[[Path], Path]:
    return lambda tmp: record_run(tmp / "run", _labels(8 * k, k), n_epochs=2, inputs=False)


def make_epoch_zero_only(tmp: Path) -> Path:
    return record_run(tmp / "run", _labels(), test_labels=_labels(9), n_epochs=1)


def check_epoch_zero_only(run: Path, out: Path, text: str) -> None:
    assert frame_files(out) == ["epoch_000.png"]
    assert gif_frames(out / "timelapse.gif") == 1
    assert (out / "curves.png").exists() and (out / "quality.png").exists()


def make_nasty_names(tmp: Path) -> Path:
    y = np.arange(36) % 6
    return record_run(tmp / "run", y, class_names=NASTY_NAMES, test_labels=y[:12], layers=("../../x", "a/b"),
                      n_epochs=2)


def check_nasty_names(run: Path, out: Path, text: str) -> None:
    # Every file is one of render's own names, inside the output folder; nothing was written beside it.
    expected = {"samples.png", "timelapse.gif", "curves.png", "train_test_map.png", "confusion.png",
                "layers_epochs.png", "forgetting.png", "quality.png", "frames/epoch_000.png", "frames/epoch_001.png",
                ".epochscope-render.json"}  # the list of what this render wrote, for the next one
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == expected
    assert sorted(p.name for p in out.parent.iterdir()) == ["out", "run"]
    assert not (out.parent.parent / "x").exists()
    # Layer files stay inside the run under a safe key.
    for p in run.rglob("*"):
        assert p.resolve().is_relative_to(run.resolve())


def make_not_a_run(tmp: Path) -> Path:
    (tmp / "photos").mkdir()
    (tmp / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    return tmp / "photos"


def make_missing(tmp: Path) -> Path:
    return tmp / "no-such-run"


def make_a_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt"


def make_truncated(tmp: Path) -> Path:
    run = record_run(tmp / "run", _labels(), test_labels=_labels(9), n_epochs=3)
    f = open_run(run)._layer_file("probe", "hidden", 1)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    return run


def make_nan_metrics(tmp: Path) -> Path:
    return record_run(tmp / "run", _labels(), n_epochs=4,
                      metrics=lambda e: {"loss": float("nan") if e == 2 else float("inf") if e == 3 else 1.0 / (e + 1)})


def check_nan_metrics(run: Path, out: Path, text: str) -> None:
    from epochscope.draw.curves import CurvesDisplay

    d = CurvesDisplay.from_run(open_run(run)).plot()
    assert d.lines_["loss"].get_xdata().tolist() == [0, 1]  # the non-finite losses are left out, not plotted


PCA = ("--method", "pca")
TRUNCATED = r"epochs/000001/probe/hidden-[0-9a-f]+\.npy: truncated array: header says \(30, 8\) float16"
NOT_A_RUN = r"photos is not an epochscope run: manifest\.json is missing"

CASES = [
    Case("nan-epochs/embed", make_nan_epochs, ("embed", "{run}", *PCA), 0,
         r"2  skipped: probe activations hold 1 NaN/Inf values\n\s+3  skipped: test activations hold 1 NaN/Inf"),
    Case("nan-epochs/render", make_nan_epochs, ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"layer 'hidden': no map frame for epochs 2, 3", check_nan_epochs),
    Case("nan-epochs/report", make_nan_epochs, ("report", "{run}", "--out", "{out}/r.html", *PCA), 0,
         r"report written to"),
    Case("all-epochs-nan", make_all_nan, ("render", "{run}", "--out", "{out}", *PCA), 1,
         r"layer 'hidden': every requested epoch holds NaN/Inf activations \(\[0, 1\]\); nothing can be embedded"),
    Case("one-class/render", make_one_class, ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"probe labels hold a single class \('cat'\)", check_one_class),
    Case("one-class/report", make_one_class, ("report", "{run}", "--out", "{out}/r.html", *PCA), 0, r"report written"),
    Case("fewer-examples-than-neighbours/umap", make_tiny, ("embed", "{run}"), 1,
         r"layer 'hidden' has 10 probe examples but method 'umap' .* needs at least 16; lower n_neighbors"),
    Case("fewer-examples-than-neighbours/report", make_tiny, ("report", "{run}", "--out", "{out}/r.html"), 1,
         r"has 10 probe examples but method 'umap' .* needs at least 16"),
    Case("fewer-examples-than-neighbours/pca-draws", make_tiny, ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"rendered \d+ files"),
    Case("two-examples/pca", make_two_examples, ("render", "{run}", "--out", "{out}", *PCA), 1,
         r"layer 'hidden' has 2 probe examples but method 'pca' .* needs at least 3"),
    Case("labels-strings", labels_case("strings"), ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"rendered", check_three_classes(["cat", "dog", "eel"])),
    Case("labels-one-hot", labels_case("one-hot"), ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"rendered", check_three_classes(["0", "1", "2"])),
    Case("labels-floats", labels_case("floats"), ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"rendered", check_three_classes(["0", "1", "2"])),
    Case("25-classes", make_many_classes(25), ("render", "{run}", "--out", "{out}", *PCA), 0, r"rendered"),
    Case("80-classes", make_many_classes(80), ("render", "{run}", "--out", "{out}", *PCA), 0, r"rendered"),
    Case("epoch-0-only/render", make_epoch_zero_only, ("render", "{run}", "--out", "{out}", *PCA), 0,
         r"rendered", check_epoch_zero_only),
    Case("epoch-0-only/report", make_epoch_zero_only, ("report", "{run}", "--out", "{out}/r.html", *PCA), 0,
         r"report written"),
    Case("nasty-layer-and-class-names", make_nasty_names,
         ("render", "{run}", "--out", "{out}", "--layer", "../../x", *PCA), 0, r"rendered", check_nasty_names),
    Case("not-a-run/render", make_not_a_run, ("render", "{run}", "--out", "{out}", *PCA), 1, NOT_A_RUN),
    Case("not-a-run/embed", make_not_a_run, ("embed", "{run}", *PCA), 1, NOT_A_RUN),
    Case("not-a-run/report", make_not_a_run, ("report", "{run}", "--out", "{out}/r.html", *PCA), 1, NOT_A_RUN),
    Case("missing-folder", make_missing, ("render", "{run}", "--out", "{out}", *PCA), 1,
         r"no-such-run: no such folder; give the folder a recorder wrote"),
    Case("a-file-not-a-folder", make_a_file, ("report", "{run}", "--out", "{out}/r.html", *PCA), 1,
         r"notes\.txt: is a file, not a folder; give the folder a recorder wrote"),
    Case("truncated-activations/render", make_truncated, ("render", "{run}", "--out", "{out}", *PCA), 1, TRUNCATED),
    Case("truncated-activations/report", make_truncated, ("report", "{run}", "--out", "{out}/r.html", *PCA), 1,
         TRUNCATED),
    Case("truncated-activations/embed", make_truncated, ("embed", "{run}", *PCA), 1, TRUNCATED),
    Case("nan-metrics", make_nan_metrics, ("render", "{run}", "--out", "{out}", *PCA), 0, r"rendered",
         check_nan_metrics),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="epochscope")
    run = case.make(tmp_path)
    out = tmp_path / "out"
    argv = [a.format(run=run, out=out) for a in case.argv]
    rc, stdout, err = cli(capsys, *argv)
    if case.rc == 1:
        assert_one_line_error(rc, err, argv[0], case.message)
        if argv[0] in ("render", "report"):  # a failed command leaves no half-written picture behind
            assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
        return
    assert rc == 0, err
    text = "\n".join([stdout, err, caplog.text])
    assert re.search(case.message, text), f"{case.message!r} not in:\n{text}"
    assert "Traceback" not in text
    if case.check:
        case.check(run, out, text)


def test_report_of_epoch_zero_only_holds_one_epoch(tmp_path: Path) -> None:
    import json

    from epochscope.pipeline import report

    run = make_epoch_zero_only(tmp_path)
    page = report(run, tmp_path / "r.html", method="pca", progress=False).read_text(encoding="utf-8")
    payload = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    assert payload["epochs"] == [0]
    loss = {s["key"]: s for s in payload["metrics"]["loss"]}["loss"]
    assert payload["metrics"]["epochs"] == [0] and loss["values"] == [1.0] and loss["name"] == "training loss"


def test_curves_of_epoch_zero_only_have_one_point(tmp_path: Path) -> None:
    from epochscope.draw.curves import CurvesDisplay

    d = CurvesDisplay.from_run(open_run(make_epoch_zero_only(tmp_path))).plot()
    assert d.lines_["loss"].get_xdata().tolist() == [0]
    assert len(d.lines_["accuracy"].get_xdata()) == 1


# ---------------------------------------------------------------------------------------- many classes


@pytest.mark.parametrize("k", [21, 25, 40, 60, 100])
def test_many_class_colours_stay_distinct(k: int) -> None:
    """Beyond tab20's 20 colours every class still gets its own colour, at least as far apart as
    tab20's closest pair (its light/dark twins) up to 40 classes, and never identical."""
    from epochscope.colors import class_colors

    c = class_colors(k)
    d = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1))
    d[np.diag_indices(k)] = np.inf
    tab20 = class_colors(20)
    d20 = np.sqrt(((tab20[:, None] - tab20[None]) ** 2).sum(-1))
    d20[np.diag_indices(20)] = np.inf
    assert len({tuple(np.round(x * 255).astype(int)) for x in c}) == k
    if k <= 40:
        assert d.min() >= d20.min() * 0.99


@pytest.mark.parametrize("k, columns", [(20, 1), (25, 2), (40, 2), (41, 3), (60, 3)])
def test_legend_of_many_classes_lists_every_name_inside_the_frame(k: int, columns: int) -> None:
    from epochscope.draw.mapframe import MapFrameRenderer

    names = [f"class {i}" for i in range(k)]
    r = MapFrameRenderer((0, 1, 0, 1), np.arange(3 * k) % k, names)
    try:
        (legend,) = r.fig.legends
        assert [t.get_text() for t in legend.get_texts()] == names
        assert legend._ncols == columns
        box = legend.get_window_extent(r.fig.canvas.get_renderer())
        fig_box, ax_box = r.fig.bbox, r.ax.get_window_extent()
        assert box.x0 >= ax_box.x1 and box.x1 <= fig_box.x1 + 1  # beside the map, not over it, not cut off
        assert box.y0 >= fig_box.y0 and box.y1 <= fig_box.y1
        assert min(t.get_fontsize() for t in legend.get_texts()) >= 9  # readable
    finally:
        r.close()


def test_beyond_60_classes_the_legend_is_replaced_by_a_note() -> None:
    from epochscope.draw.forgetting import ForgettingDisplay  # noqa: F401 (same note there)
    from epochscope.draw.mapframe import MapFrameRenderer

    r = MapFrameRenderer((0, 1, 0, 1), np.arange(160) % 80, [f"c{i}" for i in range(80)])
    try:
        assert r.fig.legends == []
        texts = [t.get_text() for t in r.fig.texts]
        assert any(t.startswith("80 classes:") and "too many to list" in t for t in texts)
        # The note is drawn: grey text pixels right of the map where the legend would be.
        right = r._background_rgb[:, int(np.ceil(r.ax.bbox.x1)) + 2:]
        assert (right.min(axis=2) < 200).sum() > 200
    finally:
        r.close()


def test_points_just_off_the_map_are_clipped_not_a_crash() -> None:
    """Map bounds are robust (outliers lie outside them): a disc whose centre lies a few pixels
    beyond an edge shows its part inside, at that edge, and never indexes past the picture."""
    from epochscope.draw.raster import splat_discs_sparse

    h, w, radius = 50, 60, 6.0
    cases = {(w + 3, 25): (20, 29, 57, 59), (-3, 25): (20, 29, 0, 2), (30, h + 3): (47, 49, 25, 34),
             (30, -3): (0, 2, 25, 34), (w + 3, h + 3): (48, 49, 58, 59), (w + 6.4, h + 6.4): None}
    for (x, y), expected in cases.items():
        rows, cols, _, cover = splat_discs_sparse(np.array([[x, y]], float), np.array([1.0, 0, 0]), shape=(h, w),
                                                  radius=radius)
        if expected is None:  # the disc's edge does not reach the picture
            assert len(rows) == 0
        else:
            assert (rows.min(), rows.max(), cols.min(), cols.max()) == expected, (x, y)
            assert (cover > 0).all()


@pytest.mark.parametrize("names", [["a&b <script>", "$\\alpha$", "$x^2$", "../../x"],
                                   [f"a rather long class name {i}" for i in range(3)]])
def test_confusion_texts_stay_inside_the_figure(names) -> None:
    """Long class names narrow the matrix; the title must not be cut off at the figure's edge."""
    from epochscope.draw.confusion import ConfusionDisplay

    k = len(names)
    d = ConfusionDisplay(counts=np.eye(k, dtype=int) * 2, class_names=names, epoch=2, split="test").plot()
    fig = d.figure_
    renderer = fig.canvas.get_renderer()
    box = d.ax_.title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, (box, fig.bbox)


# ---------------------------------------------------------------------------------------- UMAP rows (slow)


@pytest.fixture(scope="module")
def umap_smallest(tmp_path_factory) -> tuple[Path, int, str]:
    """The smallest probe UMAP accepts (n_neighbors + 1 = 16 examples) and a one-class probe of 40,
    embedded and rendered with the default method in one module-scoped setup (one numba warm-up)."""
    tmp = tmp_path_factory.mktemp("umap")
    smallest = record_run(tmp / "smallest", _labels(16), test_labels=_labels(5), n_epochs=3)
    one = record_run(tmp / "one", np.zeros(40, int), n_epochs=2)
    rc_embed = main(["embed", str(smallest)])
    rc_render = main(["render", str(one), "--out", str(tmp / "one-out")])
    return tmp, rc_embed, rc_render


@pytest.mark.slow
def test_umap_embeds_the_smallest_probe_it_accepts(umap_smallest) -> None:
    from epochscope.maps.api import embed

    tmp, rc_embed, _ = umap_smallest
    assert rc_embed == 0
    maps = embed(tmp / "smallest", progress=False)  # read back from the cache
    assert maps.coords.shape == (3, 16, 2) and np.isfinite(maps.coords).all()


@pytest.mark.slow
def test_umap_draws_a_one_class_probe(umap_smallest) -> None:
    tmp, _, rc_render = umap_smallest
    assert rc_render == 0
    assert frame_files(tmp / "one-out") == ["epoch_000.png", "epoch_001.png"]


def test_too_few_examples_for_pca_does_not_mention_n_neighbors(tmp_path: Path, capsys) -> None:
    rc, _, err = cli(capsys, "embed", make_two_examples(tmp_path), "--method", "pca")
    assert rc == 2 and "needs at least 3" in err
    assert "n_neighbors" not in err


# ---------------------------------------------------------------------------------------- a large test set


def test_placing_many_test_points_on_a_large_map_stays_bounded() -> None:
    """Memory of the exact neighbour search must not grow with the number of queries in a block
    beyond a fixed budget of distances (2**24 at a time, 64 MiB of float32)."""
    import tracemalloc

    from epochscope.maps.knn import exact_knn

    rng = np.random.default_rng(0)
    data = rng.normal(size=(20_000, 4)).astype(np.float32)
    queries = rng.normal(size=(2_048, 4)).astype(np.float32)
    tracemalloc.start()
    try:
        exact_knn(data, 15, queries=queries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 2**20, f"exact_knn peaked at {peak / 2**20:.0f} MiB"
