"""``check_run``: check a run directory file by file, and repair what can be repaired
without losing data.

One pass (:func:`inspect`) reads the manifest through the run's reader, checks the files at
the run's root (:mod:`.files`), the epochs (:mod:`.epochs`), decides who is to blame for
shapes that disagree (:mod:`.agreement`) and checks the caches (:mod:`.caches`, which asks
each cache to validate itself); it returns a :class:`~.report.CheckReport` with a repair
plan. ``repair=True`` takes the run's writer lock, carries out the plan the user was shown
(:mod:`.repair`) and checks again.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .._errors import NotARunError
from ..run.layout import EPOCHS_DIR, MANIFEST_FILE, RunLayout, parse_epoch_name
from ..run.lock import RunLock
from ..run.reader import Run
from ..run.summary import epoch_spans
from .agreement import Agreement
from .caches import check_caches
from .context import CheckContext
from .epochs import check_epochs, plan_drops
from .files import check_manifest, check_run_files
from .repair import carry_out
from .report import LEVELS, CheckReport

__all__ = ["check_run", "inspect"]


def check_run(run: Run | str | os.PathLike[str], *, repair: bool = False, force: bool = False) -> CheckReport:
    """Check a run directory and say, per file, exactly what is wrong.

    Validates the manifest, every array's shape and dtype against it, the epoch sequence,
    each epoch's metrics row and the derived caches. Nothing is followed through a link and
    nothing but regular files is read.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run folder.
    repair : carry out the plan a plain check prints, and nothing else: drop a trailing epoch
        whose own files are missing, truncated or unreadable (repeatedly, while the last epoch
        is so damaged; an epoch whose only damage is its metrics row keeps its data and gets a
        row without metrics instead), unfinished ``.partial-*`` epoch folders and temporary files left by
        killed writers, and stale, partial or corrupt cache entries. A damaged epoch followed
        by good ones, a file that merely disagrees with the manifest, a link and an unknown
        file are never removed; the report says what to do instead. Repairing takes the run's
        writer lock, so it is refused (``RunLockedError``) while a recorder is writing.
    force : carry out a plan that removes more than half of the run's epochs. Without it
        such a plan is refused and nothing is changed (``report.refused`` says why): when most
        epochs look damaged, a shared file is more likely at fault than the epochs.

    Returns
    -------
    CheckReport : ``report.ok`` is True when no problem remains; ``print(report)`` explains.

    Raises
    ------
    NotARunError : the folder does not exist or holds nothing of a run.
    RunLockedError : ``repair=True`` while another process writes the run.
    StorageError : ``repair=True`` on a run the file system does not let us change (read-only).

    Example::

        report = epochscope.check_run("runs/mnist")
        if not report.ok:
            print(report)                          # what is wrong, file by file, and the plan
            epochscope.check_run("runs/mnist", repair=True)
    """
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise NotARunError(f"{path}: no such folder; give the folder a recorder wrote (it holds {MANIFEST_FILE})")
    shown = inspect(path)
    if not repair:
        return shown
    if not shown.actions and shown.writer is None:  # nothing to do: nothing is locked or written (read-only is fine)
        return dataclasses.replace(shown, repaired=True)
    refused = None if force else _too_much(shown)
    if refused:
        return dataclasses.replace(shown, repaired=True, refused=refused)
    lock = RunLock(path) if RunLayout(path).manifest.is_file() else None
    if lock is not None:
        lock.acquire()  # RunLockedError names the writer; nothing is touched
    try:
        planned = inspect(path, holding_lock=lock is not None)
        # Only what the user was shown: a plan that grew in between (a writer finished) waits for the next check.
        agreed = {(a.path, a.what) for a in shown.actions}
        done = tuple(carry_out(path, a) for a in planned.actions if (a.path, a.what) in agreed)
    finally:
        if lock is not None:
            lock.release()
    after = inspect(path)
    return CheckReport(path=path, epochs=after.epochs, findings=after.findings, actions=done,
                       unrepairable=after.unrepairable, repaired=True, writer=after.writer,
                       unit=after.unit)


def _too_much(report: CheckReport) -> str | None:
    """Why a plan must be confirmed: it would remove, or write anew the metrics rows of, more than
    half of the run's epochs."""
    drops = [e for a in report.actions if a.path.startswith(EPOCHS_DIR + "/") and not a.rewrite
             and (e := parse_epoch_name(a.path.split("/", 1)[1])) is not None]
    rows = [e for a in report.actions if a.rewrite and a.path.startswith(EPOCHS_DIR + "/")
            and (e := parse_epoch_name(a.path.split("/")[1])) is not None]
    touched = sorted(set(drops) | set(rows))
    if not touched or 2 * len(touched) <= len(report.epochs):
        return None
    what = " and ".join(part for part in (
        f"removes {len(drops)}" if drops else "", f"writes anew the metrics rows of {len(rows)}" if rows else "") if part)
    return (f"the plan {what} of the run's {len(report.epochs)} epochs ({epoch_spans(touched)}), "
            "and nothing was changed. When most epochs look damaged a shared file may be at fault: read the problems "
            "above first; if the epochs really are lost, run `epochscope check RUN --repair --force`")


def inspect(root: Path, *, holding_lock: bool = False, find_writer: bool = True) -> CheckReport:
    """One pass over the run at ``root``: every finding and the repair plan, nothing changed.

    ``holding_lock``: the caller holds the run's writer lock (no leftover is in progress).
    ``find_writer=False``: the run's lock is not touched at all (see :class:`.context.CheckContext`;
    ``epochscope serve`` checks runs that recorders may be starting to write).
    """
    ctx = CheckContext(root, holding_lock=holding_lock, find_writer=find_writer)
    if check_manifest(ctx):
        agree = Agreement(ctx)
        check_run_files(ctx, agree)
        check_epochs(ctx, agree)
        agree.resolve()
        check_caches(ctx, plan_drops(ctx))
    order = {level: i for i, level in enumerate(LEVELS)}
    findings = sorted(ctx.findings, key=lambda f: (order[f.level], f.epoch if f.epoch is not None else -1, f.path))
    return CheckReport(path=root, epochs=tuple(ctx.epochs), findings=tuple(findings),
                       actions=tuple(ctx.actions), unrepairable=tuple(ctx.unrepairable), writer=ctx.writer,
                       unit=ctx.manifest.record_unit if ctx.manifest is not None else "epoch")
