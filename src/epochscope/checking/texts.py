"""Checks of the examples' texts a run keeps (``RUN/<split>/texts.json``, see :mod:`epochscope.run.texts`).

The file is read exactly as the run's reader reads it (a regular file inside the run, at most
:data:`~epochscope.run.texts.MAX_TEXTS_BYTES` bytes, UTF-8 JSON), then checked: one string per
example, none longer than :data:`~epochscope.run.texts.MAX_TEXT_CHARS` characters. A texts file
the manifest does not name is ignored by readers and reported as a warning. Nothing here is
ever removed by repair: texts are the user's data.
"""

from __future__ import annotations

import os

from .._errors import RunError
from ..run.fileio import read_json
from ..run.texts import MAX_TEXTS_BYTES, parse_texts
from .context import CheckContext, strip_where

__all__ = ["check_texts_files"]


def check_texts_files(ctx: CheckContext) -> None:
    """Every split's texts file against the manifest (its count of examples and the bounds)."""
    m, layout = ctx.manifest, ctx.layout
    for split, n, kept in (("probe", m.probe_size, m.has_probe_texts), ("test", m.test_size, m.has_test_texts)):
        folder = layout.split_dir(split)
        if folder.is_symlink() or not folder.is_dir():
            continue  # reported with the root's entries (or the split was never recorded)
        path = layout.texts(split)
        present = os.path.lexists(path)
        if not kept or not n:
            if present and not path.is_symlink():
                ctx.add("warning", path, "texts the manifest does not name (ignored by readers; not removed by repair)")
            continue
        if path.is_symlink():
            continue  # reported with the split folder's entries, as a link where a run file belongs
        if not present:
            ctx.add("problem", path, f"missing ({split} texts: the manifest says the run keeps one text per {split} "
                    "example); the report shows no text on hover. Restore the file from a backup")
            continue
        rel = ctx.rel(path)
        try:
            parse_texts(read_json(path, root=ctx.root, max_bytes=MAX_TEXTS_BYTES), n, rel)
        except RunError as err:
            ctx.add("problem", path, strip_where(ctx.rel_text(str(err)), rel) + f" ({split} texts)")
