"""Carrying out the repair plan: removing what the checks marked as safe to remove, and
writing anew the damaged metrics rows of epochs whose other files are whole.

Only paths inside the run are removed, and never through a link: a path with a link at any
level between the run's folder and itself is left alone (the action says why), a link that
is itself planned for removal is removed as a link (its target is never touched), and folders
are deleted with :func:`shutil.rmtree`, which never follows links inside them. A finished
epoch is first renamed to a hidden ``.partial-*-repair`` name so readers see it vanish at
once and a kill during the deletion leaves an ordinary unfinished-epoch folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

from ..run.fileio import inside_run, is_storage_error, storage_error, write_json_atomic
from ..run.layout import EPOCHS_DIR, parse_epoch_name, partial_epoch_name
from .report import RepairAction

__all__ = ["carry_out"]

log = logging.getLogger("epochscope")


def carry_out(root: Path, action: RepairAction) -> RepairAction:
    """Remove ``root / action.path`` (or write ``action.rewrite`` there); returns the action marked
    done (or why it was not done).

    Raises :class:`~epochscope.StorageError` when the file system refuses (a read-only run).
    """
    target = root / action.path
    if target == root or not inside_run(root, target.parent):
        log.warning("check --repair: left %s alone: a folder above it is a link", action.path)
        return RepairAction(action.path, action.what, refused="a folder above it is a link, never followed",
                            rewrite=action.rewrite)
    if action.rewrite:
        if target.is_symlink():
            return RepairAction(action.path, action.what, refused="it is a link, never followed", rewrite=action.rewrite)
        write_json_atomic(target, json.loads(action.rewrite))  # StorageError when the file system refuses
        log.info("check --repair: rewrote %s (%s)", action.path, action.what)
        return RepairAction(action.path, action.what, done=True, rewrite=action.rewrite)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return RepairAction(action.path, action.what, done=True)  # already gone (another repair)
    try:
        if stat.S_ISDIR(mode):
            epoch = parse_epoch_name(target.name) if target.parent.name == EPOCHS_DIR else None
            if epoch is not None:
                # Renaming first makes the drop atomic for readers: the epoch disappears at once,
                # and a kill during the deletion leaves an ordinary .partial folder.
                hidden = target.with_name(partial_epoch_name(epoch, os.getpid(), "repair"))
                os.rename(target, hidden)
                target = hidden
            shutil.rmtree(target)
        else:  # a file, or a link removed as a link: its target is never touched
            os.unlink(target)
    except OSError as err:
        if is_storage_error(err):
            raise storage_error(err, target, "remove") from err
        raise
    log.info("check --repair: removed %s (%s)", action.path, action.what)
    return RepairAction(action.path, action.what, done=True)
