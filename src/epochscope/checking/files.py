"""Checks of the files at the run's root: the manifest, the probe and test sets, the
projection matrices, and leftovers or unknown names beside them.

Every path comes from :mod:`epochscope.run.layout`; the manifest is read by the run's own
reader, so the checker accepts exactly what readers accept.
"""

from __future__ import annotations

import os

from .._errors import NotARunError, RunError
from ..run.fileio import read_npy_header
from ..run.layout import MANIFEST_FILE, ROOT_NAMES, SPLIT_FILES, SPLITS, is_temporary
from ..run.reader import Run
from .context import CheckContext, strip_where

__all__ = ["check_manifest", "check_run_files"]


def check_manifest(ctx: CheckContext) -> bool:
    """Read the manifest into ``ctx.manifest`` and look over the run's root; False when it cannot be read.

    Raises :class:`NotARunError` when the folder holds nothing of a run.
    """
    root, layout = ctx.root, ctx.layout
    if not layout.manifest.exists():
        if not layout.epochs_dir.is_dir() and not layout.split_dir("probe").is_dir():
            raise NotARunError(
                f"{root} is not an epochscope run: {MANIFEST_FILE} is missing. "
                "Point at the folder given as run_dir when recording (e.g. OUT/run for the demo)."
            )
        hint = ("the manifest was deleted: the epochs cannot be read without it; restore it from a backup"
                if layout.finished_epochs() else
                "the run's creation was interrupted before any epoch finished; record into this folder "
                "again and the recorder starts it afresh")
        ctx.add("problem", MANIFEST_FILE, f"missing; {hint}")
        return False
    try:
        ctx.manifest = Run(root).manifest
    except RunError as err:
        ctx.add("problem", MANIFEST_FILE, strip_where(str(err), layout.manifest))
        return False
    for p in sorted(root.iterdir()):
        if is_temporary(p.name):
            ctx.leftover(p, "temporary file", live=ctx.writer is not None)
        elif p.name not in ROOT_NAMES:
            ctx.add("warning", p, "unknown file or folder in the run (ignored; not removed by repair)")
    return True


def check_run_files(ctx: CheckContext) -> None:
    """The probe and test labels and kept inputs against the manifest, then the projection matrices."""
    m, layout = ctx.manifest, ctx.layout
    labels = ctx.array(layout.labels("probe"), (m.probe_size,), ("int64",),
                       f"probe labels: one int64 class per probe example, {m.probe_size}", load=True)
    ctx.classes(layout.labels("probe"), labels, 0, "labels")
    if m.has_probe_inputs:
        ctx.array(layout.inputs("probe"), (m.probe_size, *(m.input_shape or ())), ("float16",),
                  "probe inputs kept for thumbnails")
    if m.test_size:
        labels = ctx.array(layout.labels("test"), (m.test_size,), ("int64",),
                           f"test labels: one int64 class per test example, {m.test_size}", load=True)
        ctx.classes(layout.labels("test"), labels, 0, "labels")
        if m.has_test_inputs:
            ctx.array(layout.inputs("test"), (m.test_size, *(m.input_shape or ())), ("float16",),
                      "test inputs kept for thumbnails")
    for split in SPLITS:
        folder = layout.split_dir(split)
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if is_temporary(p.name):
                ctx.leftover(p, "temporary file", live=ctx.writer is not None)
            elif p.name not in SPLIT_FILES or (split == "test" and not m.test_size):
                ctx.add("warning", p, "unknown file (ignored; not removed by repair)")
    _check_reductions(ctx)


def _check_reductions(ctx: CheckContext) -> None:
    folder = ctx.layout.reductions_dir
    expected = {}
    for info in ctx.manifest.layers:
        # A reduction that names its "projection" is generated from its seed and stores no matrix.
        if info.reduction and "project" in str(info.reduction.get("method", "")) and "projection" not in info.reduction:
            expected[ctx.layout.reduction(info.key).name] = info
    present = {p.name: p for p in sorted(folder.iterdir())} if folder.is_dir() else {}
    for name, info in expected.items():
        path = folder / name
        if name not in present:
            ctx.add("warning", path, f"missing projection matrix of layer '{info.name}'; a resumed recording "
                    "draws it again from the seed in the manifest")
            continue
        ctx.array(path, None, ("float32",), f"projection matrix of layer '{info.name}'")
        try:
            with open(path, "rb") as fh:
                shape, _, _ = read_npy_header(fh, os.fstat(fh.fileno()).st_size, name)
            if len(shape) != 2 or shape[1] != info.width:
                ctx.add("problem", path, f"shape {shape}, expected (n, {info.width}) "
                        f"(projection of layer '{info.name}' to {info.width} values)")
        except (RunError, OSError):
            pass  # already reported by array()
    for name, p in present.items():
        if is_temporary(name):
            ctx.leftover(p, "temporary file", live=ctx.writer is not None)
        elif name not in expected:
            ctx.add("note", p, "projection matrix of no recorded layer (a layer recorded before the "
                    "run's manifest was updated, or a reduction that was later turned off)")
