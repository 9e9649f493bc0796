"""Checks of the files at the run's root: the manifest, the probe and test sets (their texts
in :mod:`.texts`), the projection matrices, and leftovers, links or unknown names beside them.

Every path comes from :mod:`epochscope.run.layout`; the manifest is read by the run's own
reader, so the checker accepts exactly what readers accept.
"""

from __future__ import annotations

from .._errors import NotARunError, RunError
from ..run.layout import (
    CACHE_DIR,
    EPOCHS_DIR,
    LOCK_FILE,
    MANIFEST_FILE,
    REDUCTIONS_DIR,
    ROOT_NAMES,
    SPLIT_FILES,
    SPLITS,
    is_temporary,
)
from ..run.reader import Run
from .agreement import Agreement
from .context import CheckContext, strip_where
from .texts import check_texts_files

__all__ = ["check_manifest", "check_run_files"]


def check_manifest(ctx: CheckContext) -> bool:
    """Read the manifest into ``ctx.manifest`` and look over the run's root; False when it cannot be read.

    Raises :class:`NotARunError` when the folder holds nothing of a run.
    """
    root, layout = ctx.root, ctx.layout
    if layout.manifest.is_symlink():
        ctx.link(layout.manifest, "where the manifest belongs", belongs=True)
        return False
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
        ctx.add("problem", MANIFEST_FILE, strip_where(ctx.rel_text(str(err)), layout.manifest))
        return False
    for entry in ctx.entries(root):
        path = root / entry.name
        if is_temporary(entry.name):
            ctx.leftover(path, "temporary file", live=ctx.writer is not None)
        elif entry.is_symlink() and entry.name == CACHE_DIR:
            ctx.link(path, "where the run's cache belongs (maps are neither read nor written through it: they are "
                     "computed again)", belongs=False)
        elif entry.is_symlink():
            belongs = entry.name in ROOT_NAMES
            ctx.link(path, f"where the run's {entry.name} belongs" if belongs else "in the run", belongs=belongs)
        elif entry.name not in ROOT_NAMES:
            ctx.add("warning", path, "unknown file or folder in the run (ignored; not removed by repair)")
        elif entry.name == LOCK_FILE and not entry.is_file(follow_symlinks=False):
            ctx.add("problem", path, "not a regular file; it is where epochscope keeps its writer lock: remove it")
        elif entry.name in (EPOCHS_DIR, REDUCTIONS_DIR, *SPLITS) and not entry.is_dir(follow_symlinks=False):
            ctx.add("problem", path, "a file where a folder of the run belongs")
    return True


def check_run_files(ctx: CheckContext, agree: Agreement) -> None:
    """The probe and test labels and kept inputs against the manifest, then the projection matrices."""
    m, layout = ctx.manifest, ctx.layout
    n_classes = len(m.class_names)
    beyond: dict[str, int] = {}  # labels file -> its highest class, when the class names do not reach it
    for split, n in (("probe", m.probe_size), ("test", m.test_size)):
        if split == "test" and not n:
            continue
        folder = layout.split_dir(split)
        if folder.is_symlink():
            continue  # reported with the root's entries
        size = agree.declare(f"{split}_size", n, f"{split}_size")
        path = layout.labels(split)
        what = f"{split} labels: one int64 class per {split} example, {n}"
        header = ctx.header(path, what)
        if header is not None:
            agree.observe(path, header, (n,), (size,), what)
            if ctx.dtype_is(path, header, ("int64",), what):
                labels = ctx.values(path, header)
                if labels is not None and labels.size:
                    lo, hi = int(labels.min()), int(labels.max())
                    if lo < 0:
                        ctx.add("problem", path, f"labels range {lo}..{hi}, expected 0..{n_classes - 1} "
                                                 f"({n_classes} class names)")
                    elif hi >= n_classes:
                        beyond[ctx.rel(path)] = hi
        has_inputs = m.has_probe_inputs if split == "probe" else m.has_test_inputs
        if has_inputs:
            shape = tuple(m.input_shape or ())
            fields = (size, *(agree.declare(f"input_shape[{i}]", s, f"input_shape[{i}]") for i, s in enumerate(shape)))
            path = layout.inputs(split)
            what = f"{split} inputs kept for thumbnails"
            header = ctx.header(path, what)
            if header is not None:
                ctx.dtype_is(path, header, ("float16",), what)
                agree.observe(path, header, (n, *shape), fields, what)
    if beyond:
        top = max(beyond.values())
        ctx.classes_short = True
        ctx.add("problem", MANIFEST_FILE,
                f"class_names lists {n_classes} classes, but {' and '.join(beyond)} hold classes up to {top}; "
                f"manifest.json was edited or damaged: it needs at least {top + 1} class names (no epoch is removed "
                "for this)")
        ctx.unrepairable.append(f"manifest.json: class_names needs at least {top + 1} names; repair never rewrites "
                                "the manifest")
    for split in SPLITS:
        folder = layout.split_dir(split)
        if folder.is_symlink() or not folder.is_dir():
            continue
        for entry in ctx.entries(folder):
            p = folder / entry.name
            if is_temporary(entry.name):
                ctx.leftover(p, "temporary file", live=ctx.writer is not None)
            elif entry.is_symlink():
                ctx.link(p, "in the run", belongs=entry.name in SPLIT_FILES)
            elif entry.name not in SPLIT_FILES or (split == "test" and not m.test_size):
                ctx.add("warning", p, "unknown file (ignored; not removed by repair)")
    check_texts_files(ctx)
    _check_reductions(ctx)


def _check_reductions(ctx: CheckContext) -> None:
    folder = ctx.layout.reductions_dir
    expected = {}
    for info in ctx.manifest.layers:
        # A reduction that names its "projection" is generated from its seed and stores no matrix.
        if info.reduction and "project" in str(info.reduction.get("method", "")) and "projection" not in info.reduction:
            expected[ctx.layout.reduction(info.key).name] = info
    listed = ctx.entries(folder) if folder.is_dir() and not folder.is_symlink() else []
    present = {e.name: e for e in listed}
    for name, info in expected.items():
        path = folder / name
        if name not in present:
            ctx.add("warning", path, f"missing projection matrix of layer '{info.name}'; a resumed recording "
                    "draws it again from the seed in the manifest")
            continue
        what = f"projection matrix of layer '{info.name}'"
        header = ctx.header(path, what)
        if header is None:
            continue
        ctx.dtype_is(path, header, ("float32",), what)
        if len(header.shape) != 2 or header.shape[1] != info.width:
            ctx.add("problem", path, f"shape {header.shape}, expected (n, {info.width}) "
                    f"(projection of layer '{info.name}' to {info.width} values)")
    for name, entry in present.items():
        p = folder / name
        if is_temporary(name):
            ctx.leftover(p, "temporary file", live=ctx.writer is not None)
        elif entry.is_symlink():
            if name not in expected:
                ctx.link(p, "among the projection matrices", belongs=False)
        elif name not in expected:
            ctx.add("note", p, "projection matrix of no recorded layer (a layer recorded before the "
                    "run's manifest was updated, or a reduction that was later turned off)")
