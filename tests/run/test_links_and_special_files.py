"""Issue 14, kind 2: links and special files in a run someone else gave you.

Nothing under a run is followed out of it, deleted through a link, or opened unless it is a
regular file inside the run; a FIFO never hangs a command and ``/dev/zero`` never fills memory.
Each test is a case that, before, deleted or overwrote a file outside the run, exhausted memory
or hung.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from limits import time_limit

import epochscope
from epochscope import RunError, check_run, open_run
from epochscope.cli import main
from epochscope.run import RunWriter, layer_key

KEY = f"{layer_key('hidden')}.npy"
NAMES = ["class 0", "class 1", "class 2"]

pytestmark = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="links and FIFOs as POSIX has them")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path) -> Path:
    """A user's folder outside the run, shaped like a cache so a careless repair would take it for one."""
    home = tmp_path / "home"
    (home / "maps" / "thesis").mkdir(parents=True)
    (home / "maps" / "thesis" / "chapter1.txt").write_text("years of work")
    (home / "notes.json").write_text('{"layer": "gone", "epochs": [99]}')
    (home / "data.npy").write_bytes(b"\x93NUMPY garbage")
    return home


# ------------------------------------------------------------------ nothing is deleted through a link


def test_a_cache_linked_to_a_home_folder_is_never_read_written_or_emptied(synthetic_run, home):
    before = tree(home)
    os.symlink(home, synthetic_run / "cache")
    report = check_run(synthetic_run)
    assert report.actions == ()  # before: would remove cache/maps/thesis and cache/notes.json, in the home folder
    (finding,) = report.findings
    assert finding.path == "cache" and finding.level == "warning" and f"a link (to {home})" in finding.message
    check_run(synthetic_run, repair=True)
    maps = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)  # not cached through the link
    assert maps.coords.shape == (5, 120, 2)
    assert tree(home) == before


def test_links_inside_the_cache_are_removed_as_links_never_followed(synthetic_run, home):
    epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    before = tree(home)
    maps = synthetic_run / "cache" / "maps"
    os.symlink(home / "maps" / "thesis", maps / "0123456789abcdef01234567")  # a link in an entry's place
    os.symlink(home, synthetic_run / "cache" / "elsewhere")
    (synthetic_run / "cache" / "thumbs" / "a").mkdir(parents=True)
    os.symlink(home / "notes.json", synthetic_run / "cache" / "thumbs" / "a" / "meta.json")
    check_run(synthetic_run, repair=True)
    assert tree(home) == before
    assert not (maps / "0123456789abcdef01234567").exists()  # the link itself went (a damaged entry)
    assert (synthetic_run / "cache" / "elsewhere").is_symlink()  # not an entry of any cache: left alone


def test_an_epochs_folder_linked_elsewhere_is_not_the_run_and_is_never_cleaned(synthetic_run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(synthetic_run / "epochs", elsewhere)
    (elsewhere / ".partial-000005-999999").mkdir()  # looks like a killed writer's leftover
    os.symlink(elsewhere, synthetic_run / "epochs")
    before = tree(elsewhere)
    assert open_run(synthetic_run).epochs == []
    report = check_run(synthetic_run)
    assert any(f.path == "epochs" and f.level == "problem" and "a link" in f.message for f in report.findings)
    check_run(synthetic_run, repair=True)
    assert tree(elsewhere) == before and (elsewhere / ".partial-000005-999999").is_dir()
    with pytest.raises(RunError, match=r"epochs is a link .* never writes through a link"):
        RunWriter.open(synthetic_run, framework="synthetic", labels=np.arange(120) % 3, class_names=NAMES,
                       test_labels=np.arange(30) % 3)
    assert tree(elsewhere) == before


def test_an_epoch_folder_linked_elsewhere_is_skipped_and_kept(synthetic_run, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(synthetic_run / "epochs/000004", outside)
    os.symlink(outside, synthetic_run / "epochs/000005")
    before = tree(outside)
    assert open_run(synthetic_run).epochs == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="epoch 5 is not in the run"):
        open_run(synthetic_run).activations("hidden", 5)
    check_run(synthetic_run, repair=True)
    assert (synthetic_run / "epochs/000005").is_symlink() and tree(outside) == before


def test_a_lock_linked_to_another_file_is_never_written(synthetic_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    (synthetic_run / ".lock").unlink()
    os.symlink(victim, synthetic_run / ".lock")
    (synthetic_run / "epochs/.partial-000005-999999").mkdir()  # something for repair to do
    report = check_run(synthetic_run)
    assert any(f.path == ".lock" and f.level == "problem" for f in report.findings), str(report)
    with pytest.raises(RunError, match=r"\.lock: a link .* never writes through a link"):
        check_run(synthetic_run, repair=True)  # before: victim.txt truncated to "pid N"
    with pytest.raises(RunError, match=r"\.lock is a link"):
        RunWriter.open(synthetic_run, framework="synthetic", labels=np.arange(120) % 3, class_names=NAMES,
                       test_labels=np.arange(30) % 3)  # resume: the same
    assert victim.read_text() == "important"


# ------------------------------------------------------------------ nothing but regular files is opened


def link_to_dev_zero(path: Path) -> None:
    path.unlink()
    os.symlink("/dev/zero", path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["manifest.json", "epochs/000004/metrics.json", "epochs/000004/weights.npz",
                                  f"epochs/000004/probe/{KEY}", "probe/labels.npy"])
def test_a_file_linked_to_dev_zero_is_refused_unread(synthetic_run, name, capsys):
    link_to_dev_zero(synthetic_run / name)
    with time_limit(), pytest.raises(RunError, match=rf"{Path(name).name}: a link \(to /dev/zero\)"):
        run = open_run(synthetic_run)  # before: MemoryError after reading /dev/zero for gigabytes
        run.metrics, run.weights(4), run.activations("hidden", 4), run.labels  # noqa: B018
    with time_limit():
        report = check_run(synthetic_run)
        assert any(f.path == name and "a link (to /dev/zero)" in f.message for f in report.problems), str(report)
        assert main(["info", str(synthetic_run)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["manifest.json", "epochs/000004/metrics.json", f"epochs/000004/probe/{KEY}",
                                  "epochs/000004/weights.npz", "epochs/000004/predictions.npy"])
def test_a_fifo_never_hangs_a_reader(synthetic_run, name, capsys):
    (synthetic_run / name).unlink()
    os.mkfifo(synthetic_run / name)
    with time_limit():  # before: info, embed and render waited for ever on the FIFO
        with pytest.raises(RunError, match=rf"{Path(name).name}: a FIFO, not a regular file"):
            run = open_run(synthetic_run)
            run.metrics, run.weights(4), run.activations("hidden", 4), run.predictions(4)  # noqa: B018
        report = check_run(synthetic_run)
        assert any(f.path == name and "a FIFO, not a regular file" in f.message for f in report.problems), str(report)
        rc = main(["info", str(synthetic_run)])
        if name != "manifest.json":
            assert rc == 0 or name.endswith("metrics.json") or name.endswith("weights.npz")
        check_run(synthetic_run, repair=True)
    assert (synthetic_run / name).exists()  # not a file epochscope wrote: repair leaves it to the user
    assert "Traceback" not in capsys.readouterr().err


def test_open_checked_refuses_links_at_every_level_below_the_run(synthetic_run, tmp_path):
    from epochscope.run.fileio import inside_run, open_checked

    outside = tmp_path / "outside"
    shutil.copytree(synthetic_run / "epochs/000004/probe", outside)
    shutil.rmtree(synthetic_run / "epochs/000004/probe")
    os.symlink(outside, synthetic_run / "epochs/000004/probe")
    with pytest.raises(RunError, match=r"inside probe, which is a link"):
        open_checked(synthetic_run / f"epochs/000004/probe/{KEY}", root=synthetic_run)
    with pytest.raises(RunError, match="inside probe, which is a link"):
        open_run(synthetic_run).activations("hidden", 4)
    assert not inside_run(synthetic_run, synthetic_run / f"epochs/000004/probe/{KEY}")
    assert inside_run(synthetic_run, synthetic_run / "epochs/000003/probe")
    # The run's own folder may be a link (runs kept on another disk): that is the user's choice.
    os.symlink(synthetic_run, tmp_path / "alias")
    assert open_run(tmp_path / "alias").activations("hidden", 3).shape == (120, 16)


def test_every_array_read_is_bounded_by_the_shape_the_manifest_declares(synthetic_run):
    np.save(synthetic_run / "epochs/000002/probe" / KEY, np.zeros((120, 4000), np.float16))
    with pytest.raises(RunError, match=r"shape \(120, 4000\), expected \(120, 16\) \(what the run's manifest declares\)"):
        open_run(synthetic_run).activations("hidden", 2)
    np.save(synthetic_run / "epochs/000002/predictions.npy", np.zeros(10**6, np.int64))
    with pytest.raises(RunError, match=r"predictions\.npy: shape \(1000000,\), expected \(120,\)"):
        open_run(synthetic_run).predictions(2)


def test_a_lock_that_is_a_second_name_of_another_file_is_never_written(synthetic_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    (synthetic_run / ".lock").unlink()
    os.link(victim, synthetic_run / ".lock")
    with pytest.raises(RunError, match=r"\.lock: a second name \(hard link\) of another file"):
        RunWriter.open(synthetic_run, framework="synthetic", labels=np.arange(120) % 3, class_names=NAMES,
                       test_labels=np.arange(30) % 3)
    assert victim.read_text() == "important"
