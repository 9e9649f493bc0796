"""Output that cannot be written, very many classes, huge names, renders side by side (issue 14,
kinds 3, 4 and 9, the pictures' side): one line naming the file and the cause, exit status 2 for
the user's input and 1 for the environment, nothing half-written left, bounded costs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_synthetic_run

from epochscope.cli import main
from epochscope.run import RunWriter

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def run_path(tmp_path_factory) -> Path:
    path = make_synthetic_run(tmp_path_factory.mktemp("out") / "run", n_epochs=3)
    assert main(["-q", "embed", str(path), "--method", "pca"]) == 0  # maps cached: the tests below only draw
    return path


def one_line(capsys, rc_expected: int, rc: int, *patterns: str) -> str:
    err = capsys.readouterr().err
    assert rc == rc_expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for p in patterns:
        assert p in lines[0], lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    """Hidden files left in ``folder``: temporary files (the record of what a render wrote is not one)."""
    from epochscope.pipeline import RENDER_RECORD

    return [p for p in folder.rglob(".*") if p.is_file() and p.name != RENDER_RECORD] if folder.exists() else []


def test_out_that_is_a_file_is_the_users_mistake(run_path, tmp_path, capsys):
    target = tmp_path / "pics.png"
    target.write_bytes(b"mine")
    rc = main(["render", str(run_path), "--out", str(target), "--method", "pca"])
    one_line(capsys, 2, rc, "epochscope render: error: out:", str(target), "is a file, not a folder")
    assert target.read_bytes() == b"mine"
    rc = main(["render", str(run_path), "--out", str(target / "below"), "--method", "pca"])
    one_line(capsys, 2, rc, "lies below", "which is a file")
    rc = main(["report", str(run_path), "--out", str(target / "r.html"), "--method", "pca"])
    one_line(capsys, 2, rc, "epochscope report: error:", "which is a file")
    folder = tmp_path / "a-folder.html"
    folder.mkdir()
    rc = main(["report", str(run_path), "--out", str(folder), "--method", "pca"])
    one_line(capsys, 2, rc, "is a folder")
    rc = main(["network", str(run_path), "--out", str(target / "n.gif")])
    one_line(capsys, 2, rc, "which is a file")
    assert leftovers(tmp_path) == []


def test_a_read_only_folder_is_the_environments_fault(run_path, tmp_path, capsys, monkeypatch):
    import epochscope._output as output

    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:  # a real read-only folder where the permission bits hold
        out.chmod(0o555)
    else:  # root writes anywhere: the folder says it is read-only
        real = os.access
        monkeypatch.setattr(output.os, "access", lambda p, m: False if Path(p) == out else real(p, m))
    try:
        rc = main(["render", str(run_path), "--out", str(out), "--method", "pca"])
        one_line(capsys, 1, rc, "epochscope render: error: cannot write", str(out), "read-only")
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("where", ["png", "figure", "gif", "report"])
def test_a_full_disk_gives_one_line_and_leaves_no_half_written_file(run_path, tmp_path, capsys, monkeypatch, where):
    from matplotlib.figure import Figure
    from PIL import Image

    full = OSError(errno.ENOSPC, "No space left on device")
    out = tmp_path / "pics"
    if where == "png":  # the frames (Pillow): some bytes written, then the disk is full
        real_save = Image.Image.save

        def save(self, fp, *a, **k):
            if str(fp).endswith(".partial.png") and "epoch_001" in str(fp):
                Path(fp).write_bytes(b"\x89PNG half")
                raise full
            return real_save(self, fp, *a, **k)

        monkeypatch.setattr(Image.Image, "save", save)
    elif where == "figure":  # curves.png (matplotlib)
        real_savefig = Figure.savefig

        def savefig(self, fname, *a, **k):
            if "curves" in str(fname):
                Path(fname).write_bytes(b"half")
                raise full
            return real_savefig(self, fname, *a, **k)

        monkeypatch.setattr(Figure, "savefig", savefig)
    elif where == "gif":  # the streamed time-lapse
        import epochscope.draw.animate as animate

        real_append = animate._GifStream.append
        calls = []

        def append(self, frame):
            calls.append(1)
            if len(calls) == 2:
                self.fp.write(b"half a frame")
                raise full
            return real_append(self, frame)

        monkeypatch.setattr(animate._GifStream, "append", append)
    else:  # the report page
        real_write = Path.write_text

        def write_text(self, *a, **k):
            if ".partial" in self.name:
                real_write(self, "<html>half")
                raise full
            return real_write(self, *a, **k)

        monkeypatch.setattr(Path, "write_text", write_text)
    args = ["report", str(run_path), "--out", str(out / "r.html")] if where == "report" else \
        ["render", str(run_path), "--out", str(out)]
    rc = main([*args, "--method", "pca", "-q"])  # -q: the error is the only line, no progress or log lines
    line = one_line(capsys, 1, rc, "cannot write", "No space left on device", "the disk is full")
    assert str(out) in line
    assert leftovers(out) == []  # no .partial files
    if where == "gif":
        assert not (out / "timelapse.gif").exists()


def test_two_renders_into_one_folder_do_not_collide(run_path, tmp_path):
    """Temporary names are unique per process: 3 of 12 such renders failed before."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "epochscope", "-q", "render", str(run_path), "--out", str(out), "--method", "pca"]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in results), results
    assert leftovers(out) == []
    from PIL import Image

    with Image.open(out / "timelapse.gif") as gif:
        assert gif.n_frames == 3


def many_class_run(path: Path, n_classes: int, *, name=None, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, n_classes, size=n)
    names = [f"c{i}" for i in range(n_classes)] if name is None else [name(i) for i in range(n_classes)]
    with RunWriter.open(path, framework="x", labels=labels, class_names=names, test_labels=labels[:60]) as w:
        w.declare_layer("h", (4,), 4, None)
        for epoch in range(2):
            with w.epoch(epoch) as ep:
                ep.set_activations("h", rng.normal(size=(n, 4)))
                ep.set_activations("h", rng.normal(size=(60, 4)), split="test")
                ep.set_predictions(np.where(rng.random(n) < 0.5, labels, rng.integers(0, n_classes, size=n)))
                ep.set_predictions(np.where(rng.random(60) < 0.5, labels[:60], 0), split="test")
                ep.set_metrics({"loss": 1.0, "accuracy": 0.5})
    return path


def test_twenty_thousand_classes_render_and_report_within_the_memory_goal(tmp_path):
    """20,000 classes took the machine's memory (dense class x class arrays) and the report 9.4 GB:
    now top-k confusion and no legend, under an address-space limit a dense 20,000 x 20,000 count
    array alone would break."""
    run = many_class_run(tmp_path / "run", 20_000)
    script = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import epochscope
from epochscope.draw.confusion import ConfusionDisplay
paths = epochscope.render({str(run)!r}, {str(tmp_path / 'pics')!r}, method="pca", progress=False, network=False)
epochscope.report({str(run)!r}, {str(tmp_path / 'r.html')!r}, method="pca", progress=False)
d = ConfusionDisplay.from_run({str(run)!r})
print(len(paths), d.counts.shape, d.class_names[-1])
"""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(21, 21) all other 19,980 classes" in out.stdout
    html = (tmp_path / "r.html").stat().st_size
    assert html < 5_000_000


def test_a_huge_class_name_is_shortened_for_drawing(tmp_path):
    """A 1 MB class name made render run for minutes (matplotlib laid the whole text out)."""
    import epochscope
    from epochscope.draw.mapframe import MapFrameRenderer

    run = many_class_run(tmp_path / "run", 3, name=lambda i: ("class " + "x" * 1_000_000) if i == 0 else f"c{i}")
    paths = epochscope.render(run, tmp_path / "pics", method="pca", progress=False, network=False)
    assert {"confusion.png", "curves.png", "timelapse.gif"} <= {p.name for p in paths}
    r = MapFrameRenderer((0, 1, 0, 1), np.zeros(1, int), epochscope.open_run(run).class_names)
    texts = [t.get_text() for t in r.fig.legends[0].get_texts()]
    assert max(len(t) for t in texts) <= 40 and texts[0].endswith("…")
    page = epochscope.report(run, tmp_path / "r.html", method="pca", progress=False)
    assert page.stat().st_size < 2_000_000  # the name is cut in the page too


def test_the_next_render_removes_what_a_killed_one_left_half_written(run_path, tmp_path):
    import signal

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    alive_pid = child.pid
    out = tmp_path / "pics"
    (out / "frames").mkdir(parents=True)
    dead = [out / ".timelapse.4194303-abcdef.partial.gif", out / "frames" / ".epoch_001.4194303-012345.partial.png"]
    running = out / f".curves.{alive_pid}-fedcba.partial.png"  # another render, still writing
    for p in [*dead, running]:
        p.write_bytes(b"half")
    mine = out / ".my-notes.txt"
    mine.write_text("keep")
    try:
        assert main(["-q", "render", str(run_path), "--out", str(out), "--method", "pca", "--no-network"]) == 0
        assert not any(p.exists() for p in dead)
        assert running.exists() and mine.exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def _inodes(folder: Path) -> dict[str, int]:
    """Each visible file below ``folder`` and its inode (a picture moved in gets a new one)."""
    return {str(p.relative_to(folder)): p.stat().st_ino for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("blocker", ["frames", "timelapse.gif"])
def test_a_file_where_a_folder_goes_or_a_folder_where_a_picture_goes_stops_before_any_picture_moves(
        run_path, tmp_path, capsys, blocker):
    """Before: the pictures sorted before it were moved in, then the move failed ("File exists", "Is a
    directory", exit 1): the folder mixed this render's confusion matrix and curves with the earlier
    render's time-lapse."""
    out = tmp_path / "pics"
    assert main(["-q", "render", str(run_path), "--out", str(out), "--method", "pca"]) == 0
    in_the_way = out / blocker
    if blocker == "frames":
        for frame in in_the_way.iterdir():
            frame.unlink()
        in_the_way.rmdir()
        in_the_way.write_text("my notes")
    else:
        in_the_way.unlink()
        (in_the_way / "inside").mkdir(parents=True)
    before = _inodes(out)
    rc = main(["-q", "render", str(run_path), "--out", str(out), "--method", "pca"])
    kind = "a file where the render puts a folder" if blocker == "frames" else "a folder where the render puts a file"
    one_line(capsys, 2, rc, "epochscope render: error:", str(in_the_way), kind, "remove or rename it")
    assert _inodes(out) == before  # nothing moved in
    assert leftovers(out) == [] and not [p for p in out.iterdir() if "partial" in p.name]


def test_a_frames_folder_on_another_disk_gets_its_frames(run_path, tmp_path, monkeypatch):
    """``OUT/frames`` a link to a folder on another disk: a rename cannot cross disks (EXDEV), so the
    frames are copied there. Before: "Invalid cross-device link", exit 1, the pictures before the
    frames moved in and those after not."""
    import epochscope._output as output

    out = tmp_path / "pics"
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    out.mkdir()
    (out / "frames").symlink_to(elsewhere)
    real_replace = os.replace

    def replace(src, dst):  # a rename from the hidden folder into the linked one crosses disks
        if ".partial" in str(Path(src).parent) and ".partial" not in str(Path(dst).parent) \
                and Path(dst).parent.name == "frames":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", replace)
    assert main(["-q", "render", str(run_path), "--out", str(out), "--method", "pca"]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert (out / "timelapse.gif").is_file() and (out / "frames").is_symlink()
    assert leftovers(out) == [] and leftovers(elsewhere) == []


@pytest.mark.parametrize(("command", "said"), [
    ("render", "interrupted; the output folder is left as it was"),
    ("report", "interrupted; nothing half-written is left"),
    ("demo", "interrupted; every finished epoch is saved"),
])
def test_ctrl_c_says_what_it_leaves_for_the_command_it_stopped(command, said, tmp_path, monkeypatch, capsys):
    """Ctrl-C said "every finished epoch is saved" for every command: recording's words, about a render."""
    import epochscope.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(func=interrupted)
    args = {"render": [str(tmp_path), "--out", str(tmp_path / "o")], "report": [str(tmp_path)], "demo": []}[command]
    assert cli.main([command, *args]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == said
