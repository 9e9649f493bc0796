"""``epochscope embed`` and ``epochscope render`` SIGKILLed at random instants lose nothing.

One helper process imports epochscope, matplotlib and the PCA embedder once (the expensive
part) and then forks a fresh process per command line, which runs
``epochscope.cli.main([...])`` exactly as ``epochscope embed RUN`` / ``epochscope render RUN
--out OUT`` would. Each kill lands either after a seeded random delay within the command's
measured duration, or the moment a temporary file appears (a maps cache entry or a picture
being written), so half-written states are caught on purpose, not by luck.

After every kill: the run opens; ``check_run`` finds no problem (leftovers are warnings, and
``--repair`` clears them); a half-written cache entry is ignored and the maps recomputed
equal the reference maps; every picture under its final name is whole (temporary name +
rename); and a rerun of the command succeeds and draws the same pictures as an unkilled run.

UMAP is left out: every fresh process pays numba's 20-25 s JIT, so a few kills would cost
minutes; the cache and picture writers are the same for every method.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import make_synthetic_run

from epochscope import check_run, open_run
from epochscope.maps.api import embed
from epochscope.maps.cache import load_maps, maps_cache_dir

N_EPOCHS = 6
SLOW_WRITE = 0.03  # s before each save and rename in a kill aimed at a write (kill_when's watch)

# Reads one JSON object per line ({"argv": [...], "slow": seconds}), forks a process that runs the
# command line, prints its pid, then how it ended (the raw wait status). A slow child waits
# SLOW_WRITE s before every array save and every rename: a small cache entry is otherwise
# written in about a millisecond, and a busy machine's watcher missed it (CI, stop 21), so
# the kill must not depend on catching that window by luck.
SERVER = r"""
import json, os, sys, tempfile, time
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
os.environ["MPLBACKEND"] = "Agg"
sys.path.insert(0, sys.argv[1])
from synthetic import make_synthetic_run
from epochscope.cli import main
from pathlib import Path

# Import and warm up everything the children use (fonts, PIL, the PCA embedder, the CLI).
warm = Path(tempfile.mkdtemp()) / "warm"
make_synthetic_run(warm, n_probe=30, n_test=6, n_epochs=2)
devnull = os.open(os.devnull, os.O_WRONLY)
saved = os.dup(1)
os.dup2(devnull, 1)
main(["--quiet", "render", str(warm), "--out", str(warm.parent / "out"), "--method", "pca"])
os.dup2(saved, 1)
print("ready", flush=True)
def slowed(fn, pause):
    def wrapper(*args, **kwargs):
        time.sleep(pause)
        return fn(*args, **kwargs)
    return wrapper

for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(devnull, 1)
            if order["slow"]:
                import numpy
                for mod, name in ((numpy, "save"), (numpy, "savez"), (os, "replace"), (os, "rename")):
                    setattr(mod, name, slowed(getattr(mod, name), order["slow"]))
            code = main(order["argv"])
        finally:
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class Forker:
    """The forking helper process (started and stopped by this module)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._err = open(log, "w")
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}  # no BLAS thread pool in the parent, so forking is safe
        tests = str(Path(__file__).resolve().parent)
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, tests], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, env=env)
        assert self.readline() == "ready", self.stderr()

    def readline(self) -> str:
        line = self.proc.stdout.readline().strip()
        if not line:
            raise AssertionError(f"helper stopped:\n{self.stderr()}")
        return line

    def stderr(self) -> str:
        self._err.flush()
        return self.log.read_text()[-4000:]

    def start(self, *argv: object, slow: float = 0.0) -> int:
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "slow": slow}) + "\n")
        self.proc.stdin.flush()
        return int(self.readline())

    def wait(self) -> int:
        return int(self.readline())

    def run(self, *argv: object) -> float:
        """Run a command to its end; its duration in seconds."""
        t0 = time.perf_counter()
        self.start(*argv)
        status = self.wait()
        assert os.waitstatus_to_exitcode(status) == 0, f"{argv} failed:\n{self.stderr()}"
        return time.perf_counter() - t0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._err.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The pristine run, the reference maps and pictures (unkilled), the helper, and durations."""
    root = tmp_path_factory.mktemp("kill")
    pristine = make_synthetic_run(root / "pristine", n_probe=500, n_test=50, n_epochs=N_EPOCHS, width=16)
    forker = Forker(root / "helper.log")
    try:
        ref_run = root / "reference"
        shutil.copytree(pristine, ref_run)
        t_embed = forker.run("--quiet", "embed", ref_run, "--method", "pca")
        shutil.rmtree(ref_run / "cache")
        t_render = forker.run("--quiet", "render", ref_run, "--out", root / "ref-out", "--method", "pca")
        yield {"root": root, "pristine": pristine, "forker": forker, "ref_maps": embed(ref_run, method="pca",
               progress=False), "ref_out": root / "ref-out", "t_embed": t_embed, "t_render": t_render}
    finally:
        forker.close()


def _temporary(name: str) -> bool:
    return name.startswith(".") and (".tmp-" in name or ".partial" in name)


def _writing(watch: Path) -> bool:
    """Whether a hidden temporary entry is in ``watch``: a cache entry's temporary folder, or a picture's
    temporary file, also inside the hidden folder a render draws into (``.render.*.partial``, which
    lives through the whole drawing: its files, not the folder, are a picture half-written)."""
    try:
        entries = list(os.scandir(watch))
    except OSError:
        return False
    for entry in entries:
        if entry.name.startswith(".render.") and entry.is_dir(follow_symlinks=False):
            if any(_temporary(n) for _, _, files in os.walk(entry.path) for n in files):
                return True
        elif _temporary(entry.name):
            return True
    return False


def kill_when(forker: Forker, argv: list, *, delay: float | None, watch: Path | None, rng: random.Random,
              linger: float = SLOW_WRITE) -> bool:
    """Start ``argv``; SIGKILL it after ``delay`` s, or as soon as a hidden temporary entry appears
    under ``watch`` (the command's saves and renames then slowed by SLOW_WRITE, and the kill
    lands up to ``linger`` s later: within one pause for a picture, whose temporary file is gone
    once renamed; over the stages of a cache entry, whose temporary folder lives through all of
    them). Returns whether it was killed (False: it finished first)."""
    pid = forker.start(*argv, slow=SLOW_WRITE if delay is None else 0.0)
    if delay is not None:
        time.sleep(delay)
    else:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _writing(watch):
                time.sleep(rng.uniform(0, linger))
                break
            time.sleep(0.0002)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    status = forker.wait()
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def assert_run_healthy(path: Path, what: str) -> None:
    """The run opens, has no problem; ``repair`` clears every leftover and stale cache."""
    run = open_run(path)
    assert run.epochs == list(range(N_EPOCHS)), what
    report = check_run(path)
    assert report.ok, f"{what}:\n{report}"
    assert all(f.path.startswith("cache/") for f in report.findings), f"{what}:\n{report}"
    repaired = check_run(path, repair=True)
    assert repaired.ok
    assert check_run(path).findings == (), f"{what}: after repair:\n{check_run(path)}"


def assert_cache_consistent(path: Path, ref, what: str) -> None:
    """Every cache entry under a final name is complete and equals the reference maps."""
    root = maps_cache_dir(open_run(path))
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name.startswith("."):
            continue  # an unfinished write, ignored by readers
        hit = load_maps(open_run(path), entry.name)
        assert hit is not None, f"{what}: cache entry {entry.name} is under its final name but unreadable"
        np.testing.assert_allclose(hit["coords"], ref.coords, atol=1e-5, err_msg=what)


def _hidden(p: Path, out: Path) -> bool:
    """A temporary name, or inside the hidden folder a render draws into before it moves the pictures in."""
    return any(part.startswith(".") for part in p.relative_to(out).parts)


def assert_pictures_whole(out: Path, ref_out: Path, what: str) -> None:
    """Every picture under its final name opens completely; GIFs hold every frame."""
    for p in sorted(out.rglob("*")) if out.is_dir() else []:
        if not p.is_file() or _hidden(p, out):
            continue
        assert (ref_out / p.relative_to(out)).exists(), f"{what}: unexpected file {p}"
        with Image.open(p) as im:
            im.load()  # a truncated PNG/GIF raises here
            if p.suffix == ".gif":
                assert im.n_frames == N_EPOCHS, f"{what}: {p.name} holds {im.n_frames} frames"


def same_pictures(out: Path, ref_out: Path) -> None:
    names = sorted(str(p.relative_to(ref_out)) for p in ref_out.rglob("*") if p.is_file() and not _hidden(p, ref_out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not _hidden(p, out)) == names
    # The rerun removed what the killed render left in its hidden folder.
    assert not [p for p in out.iterdir() if ".partial" in p.name], sorted(out.iterdir())
    for name in names:
        if name.endswith(".png"):
            a, b = (np.asarray(Image.open(d / name).convert("RGB")) for d in (out, ref_out))
            assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 2, name


def test_embed_killed_at_random_instants(setup):
    rng = random.Random(11)
    forker, ref = setup["forker"], setup["ref_maps"]
    plans = [rng.uniform(0.0, setup["t_embed"]) for _ in range(2)] + [None] * 3  # None: kill while caching
    killed_writing = 0
    for i, delay in enumerate(plans):
        path = setup["root"] / f"embed-{i}"
        shutil.copytree(setup["pristine"], path)
        what = f"embed kill {i} ({'while caching' if delay is None else f'after {delay:.2f} s'})"
        killed = kill_when(forker, ["--quiet", "embed", path, "--method", "pca"], delay=delay,
                           watch=path / "cache" / "maps", rng=rng, linger=4 * SLOW_WRITE)
        leftovers = [p.name for p in (path / "cache" / "maps").glob(".tmp-*")]
        killed_writing += killed and bool(leftovers)
        assert_cache_consistent(path, ref, what)
        # Half-written entries are ignored: maps are recomputed (or read back) equal to the reference.
        maps = embed(path, method="pca", progress=False)
        np.testing.assert_allclose(maps.coords, ref.coords, atol=1e-5, err_msg=what)
        assert load_maps(open_run(path), next(p.name for p in (path / "cache" / "maps").iterdir()
                                              if not p.name.startswith("."))) is not None
        assert_run_healthy(path, what)
        assert not list((path / "cache" / "maps").glob(".tmp-*")), f"{what}: repair left a partial entry"
        shutil.rmtree(path)
    assert killed_writing >= 1, "no kill caught a cache entry half-written"


def test_render_killed_at_random_instants(setup):
    rng = random.Random(23)
    forker, ref_out = setup["forker"], setup["ref_out"]
    # Random instants over the whole command, and kills the moment a picture is being written.
    plans = [rng.uniform(0.0, setup["t_render"]) for _ in range(2)] + [None] * 3
    killed_writing = 0
    for i, delay in enumerate(plans):
        path, out = setup["root"] / f"render-{i}", setup["root"] / f"render-{i}-out"
        shutil.copytree(setup["pristine"], path)
        if i % 2:  # half the kills start with the maps cached, so the kill lands in the drawing
            forker.run("--quiet", "embed", path, "--method", "pca")
        what = f"render kill {i} ({'while writing' if delay is None else f'after {delay:.2f} s'})"
        killed = kill_when(forker, ["--quiet", "render", path, "--out", out, "--method", "pca"], delay=delay,
                           watch=out, rng=rng)
        partial = [p for p in out.rglob(".*") if p.is_file() and ".partial" in p.name] if out.is_dir() else []
        killed_writing += killed and bool(partial)
        assert_pictures_whole(out, ref_out, what)
        assert_cache_consistent(path, setup["ref_maps"], what)
        assert_run_healthy(path, what)
        forker.run("--quiet", "render", path, "--out", out, "--method", "pca")  # the rerun succeeds
        same_pictures(out, ref_out)
        shutil.rmtree(path)
        shutil.rmtree(out)
    assert killed_writing >= 2, f"only {killed_writing} kills caught a picture half-written"


# ------------------------------------------------------------------ half-written caches, made on purpose


def _cached_run(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=12, n_epochs=3)
    maps = embed(path, method="pca", progress=False)
    (entry,) = [p for p in maps_cache_dir(open_run(path)).iterdir()]
    return path, entry, maps.coords


def test_partial_cache_entry_of_a_dead_process_is_ignored_and_repaired(tmp_path):
    path, entry, coords = _cached_run(tmp_path)
    tmp = entry.with_name(f".tmp-{entry.name}-999999999")  # a pid that cannot be alive
    shutil.copytree(entry, tmp)
    (tmp / "meta.json").unlink()
    data = (tmp / "coords.npy").read_bytes()
    (tmp / "coords.npy").write_bytes(data[: len(data) // 3])
    shutil.rmtree(entry)
    maps = embed(path, method="pca", progress=False)  # recomputed, the partial entry ignored
    np.testing.assert_allclose(maps.coords, coords)
    report = check_run(path)
    assert report.ok and any("partial cache entry" in f.message for f in report.warnings), str(report)
    check_run(path, repair=True)
    assert not tmp.exists() and entry.is_dir()
    assert check_run(path).findings == ()


@pytest.mark.parametrize("damage", ["truncate-coords", "drop-coords", "garbage-meta", "drop-quality"])
def test_damaged_cache_entry_is_ignored_and_recomputed(tmp_path, damage):
    path, entry, coords = _cached_run(tmp_path)
    if damage == "truncate-coords":
        data = (entry / "coords.npy").read_bytes()
        (entry / "coords.npy").write_bytes(data[: len(data) - 20])
    elif damage == "drop-coords":
        (entry / "coords.npy").unlink()
    elif damage == "garbage-meta":
        (entry / "meta.json").write_text("{not json")
    else:
        (entry / "quality.npz").unlink()
    report = check_run(path)
    # The maps cache validates its own entries (maps.cache.scan_entries), so a missing file is found too.
    assert not report.ok and any(f.path.startswith("cache/maps/") for f in report.problems), str(report)
    maps = embed(path, method="pca", progress=False)  # ignored, recomputed and replaced
    np.testing.assert_allclose(maps.coords, coords)
    assert check_run(path).findings == ()
    np.testing.assert_allclose(embed(path, method="pca", progress=False).coords, coords)


@pytest.mark.parametrize("damage", ["truncate-coords", "drop-quality"])
def test_damaged_cache_entry_is_replaced_when_recomputed(tmp_path, damage):
    path, entry, _ = _cached_run(tmp_path)
    if damage == "truncate-coords":
        data = (entry / "coords.npy").read_bytes()
        (entry / "coords.npy").write_bytes(data[: len(data) - 20])
    else:
        (entry / "quality.npz").unlink()
    embed(path, method="pca", progress=False)
    assert load_maps(open_run(path), entry.name) is not None
