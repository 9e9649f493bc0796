"""Property test (issue 14): ``check --repair`` on a randomly damaged copy of a healthy run never
removes an epoch whose files are intact, and never touches a path outside the run.

Hypothesis damages a copy of a small run (with a maps cache) by one to four of: truncating,
flipping bytes in, deleting or garbling a file; leaving a killed writer's partial epoch or
temporary file; replacing a file or the ``cache`` folder by a link to decoys outside the run;
a FIFO where a file belongs. Decoy files and link targets sit outside the run and must come out
byte-identical and all present; every epoch whose files were untouched must still be there,
byte for byte, whether or not repair was forced.
"""

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits import time_limit
from synthetic import make_synthetic_run

import epochscope
from epochscope import check_run


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = make_synthetic_run(tmp_path_factory.mktemp("template") / "run", n_probe=12, n_test=6, n_epochs=4, width=4)
    epochscope.embed(path, "hidden", method="pca", progress=False)
    epochscope.embed(path, "hidden", method="pca", epochs=[2, 3], progress=False)
    (path / ".lock").unlink()
    return path


def files_of(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links are not followed) with its bytes."""
    out = {}
    for top, _, names in os.walk(root):
        for name in names:
            p = Path(top) / name
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


HOW = ["truncate", "flip", "delete", "garbage", "partial", "tempfile", "link-file", "link-cache", "fifo"]


def apply(run: Path, outside: Path, files: list[str], how: str, data) -> set[str]:
    """Damage ``run``; returns the run files (relative paths) this touched."""
    if how == "partial":
        epoch = data.draw(st.integers(0, 9), label="partial epoch")
        folder = run / "epochs" / f".partial-{epoch:06d}-999999"
        folder.mkdir(exist_ok=True)
        (folder / "metrics.json").write_text("{")
        return set()
    if how == "tempfile":
        where = data.draw(st.sampled_from(["", "probe/", "cache/maps/"]), label="temp where")
        folder = run / where
        if folder.is_dir() and folder.resolve().is_relative_to(run.resolve()):  # not through the test's own links
            (folder / ".manifest.json.tmp-999999").write_bytes(b"{")
        return set()
    if how == "link-cache":
        if (run / "cache").is_symlink():
            return set()
        shutil.rmtree(run / "cache", ignore_errors=True)
        os.symlink(outside / "home", run / "cache")
        return {f for f in files if f.startswith("cache/")}
    target = data.draw(st.sampled_from(files), label="file")
    path = run / target
    if not path.is_file() or path.is_symlink():
        return set()
    if how == "link-file":
        path.unlink()
        os.symlink(outside / "home" / "precious.txt", path)
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "delete":
        path.unlink()
    else:
        raw = path.read_bytes()
        if how == "truncate":
            raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)), label="keep")]
        elif how == "garbage":
            raw = data.draw(st.binary(max_size=200), label="garbage") + b"\x00"
        else:
            flips = data.draw(st.lists(st.integers(0, max(len(raw) - 1, 0)), min_size=1, max_size=6), label="flips")
            out = bytearray(raw)
            for pos in flips:
                if out:
                    out[pos] ^= 0xA5
            raw = bytes(out)
        path.write_bytes(raw)
    return {target}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_repair_keeps_intact_epochs_and_never_touches_the_outside(template, tmp_path_factory, data):
    case = tmp_path_factory.mktemp("case")
    run, outside = case / "run", case / "outside"
    shutil.copytree(template, run, symlinks=True)
    (outside / "home" / "maps" / "entry").mkdir(parents=True)  # looks like a cache to a careless repair
    (outside / "home" / "precious.txt").write_text("a user's file outside the run")
    (outside / "home" / "maps" / "entry" / "meta.json").write_text('{"layer": "gone", "epochs": [99]}')
    (outside / "home" / "notes.json").write_text('{"epochs": [42]}')
    os.symlink(outside / "home" / "precious.txt", run / "epochs" / "000001" / "probe" / "linked-notes.npy")
    outside_before = files_of(outside)

    files = sorted(files_of(run))
    touched: set[str] = set()
    for how in data.draw(st.lists(st.sampled_from(HOW), min_size=1, max_size=4), label="damage"):
        touched |= apply(run, outside, files, how, data)
    intact = {}
    for folder in sorted((template / "epochs").iterdir()):
        prefix = f"epochs/{folder.name}/"
        if not any(t.startswith(prefix) for t in touched):
            intact[folder.name] = {k: v for k, v in files_of(template).items() if k.startswith(prefix)}
    force = data.draw(st.booleans(), label="force")

    with time_limit(30):
        report = check_run(run, repair=True, force=force)
    assert report.repaired

    assert files_of(outside) == outside_before, "repair touched a file outside the run"
    # The link itself goes only with its epoch (a damaged trailing epoch that repair drops); its target never.
    assert (run / "epochs/000001/probe/linked-notes.npy").is_symlink() or not (run / "epochs/000001").exists()
    now = files_of(run)
    for name, expected in intact.items():
        assert (run / "epochs" / name).is_dir(), f"repair removed intact epoch {name}:\n{report}"
        assert {k: now.get(k) for k in expected} == expected, f"repair changed intact epoch {name}"
    shutil.rmtree(case)
