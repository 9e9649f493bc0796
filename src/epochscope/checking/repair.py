"""Carrying out the repair plan: removing what the checks marked as safe to remove.

Only paths inside the run are removed, links are removed as links (never followed), and
a finished epoch is first renamed to a hidden ``.partial-*-repair`` name so readers see it
vanish at once and a kill during the deletion leaves an ordinary unfinished-epoch folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..run.layout import EPOCHS_DIR, parse_epoch_name, partial_epoch_name
from .report import RepairAction

__all__ = ["carry_out"]

log = logging.getLogger("epochscope")


def carry_out(root: Path, action: RepairAction) -> RepairAction:
    """Remove ``root / action.path``; returns the action marked done."""
    target = root / action.path
    if target.is_symlink():  # remove the link only: never follow it out of the run
        target.unlink()
    elif target.is_dir():
        epoch = parse_epoch_name(target.name) if target.parent.name == EPOCHS_DIR else None
        if epoch is not None:
            # Renaming first makes the drop atomic for readers: the epoch disappears at once,
            # and a kill during the deletion leaves an ordinary .partial folder.
            hidden = target.with_name(partial_epoch_name(epoch, os.getpid(), "repair"))
            os.rename(target, hidden)
            target = hidden
        shutil.rmtree(target, ignore_errors=True)
    elif target.exists():
        target.unlink()
    log.info("check --repair: removed %s (%s)", action.path, action.what)
    return RepairAction(action.path, action.what, done=True)
