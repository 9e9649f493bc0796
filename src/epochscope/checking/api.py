"""``check_run``: check a run directory file by file, and repair what can be repaired
without losing data.

One pass (:func:`inspect`) reads the manifest through the run's reader, checks the files at
the run's root (:mod:`.files`), the epochs (:mod:`.epochs`) and the caches (:mod:`.caches`,
which asks each cache to validate itself), and returns a :class:`~.report.CheckReport` with
a repair plan. ``repair=True`` takes the run's writer lock, carries the plan out
(:mod:`.repair`) and checks again.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import NotARunError
from ..run.layout import MANIFEST_FILE, RunLayout
from ..run.lock import RunLock
from ..run.reader import Run
from .caches import check_caches
from .context import CheckContext
from .epochs import check_epochs, plan_drops
from .files import check_manifest, check_run_files
from .repair import carry_out
from .report import LEVELS, CheckReport

__all__ = ["check_run", "inspect"]


def check_run(run: Run | str | os.PathLike[str], *, repair: bool = False) -> CheckReport:
    """Check a run directory and say, per file, exactly what is wrong.

    Validates the manifest, every array's shape and dtype against it, the epoch sequence,
    each epoch's metrics row and the derived caches.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run folder.
    repair : drop an incomplete or corrupt trailing epoch (repeatedly, while the last epoch
        is damaged), unfinished ``.partial-*`` epoch folders and temporary files left by
        killed writers, and stale, partial or corrupt cache entries. A damaged epoch
        followed by good ones is never dropped; the report says what to do instead.
        Repairing takes the run's writer lock, so it is refused (``RunLockedError``) while
        a recorder is writing.

    Returns
    -------
    CheckReport : ``report.ok`` is True when no problem remains; ``print(report)`` explains.

    Raises
    ------
    NotARunError : the folder does not exist or holds nothing of a run.
    RunLockedError : ``repair=True`` while another process writes the run.

    Example::

        report = epochscope.check_run("runs/mnist")
        if not report.ok:
            print(report)                          # what is wrong, file by file
            epochscope.check_run("runs/mnist", repair=True)
    """
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise NotARunError(f"{path}: no such folder; give the folder a recorder wrote (it holds {MANIFEST_FILE})")
    if not repair:
        return inspect(path)
    lock = RunLock(path) if RunLayout(path).manifest.is_file() else None
    if lock is not None:
        lock.acquire()  # RunLockedError names the writer; nothing is touched
    try:
        planned = inspect(path, holding_lock=lock is not None)
        done = tuple(carry_out(path, action) for action in planned.actions)
    finally:
        if lock is not None:
            lock.release()
    after = inspect(path)
    return CheckReport(path=path, epochs=after.epochs, findings=after.findings, actions=done,
                       unrepairable=after.unrepairable, repaired=True, writer=after.writer)


def inspect(root: Path, *, holding_lock: bool = False) -> CheckReport:
    """One pass over the run at ``root``: every finding and the repair plan, nothing changed.

    ``holding_lock``: the caller holds the run's writer lock (no leftover is in progress).
    """
    ctx = CheckContext(root, holding_lock=holding_lock)
    if check_manifest(ctx):
        check_run_files(ctx)
        bad = check_epochs(ctx)
        check_caches(ctx, plan_drops(ctx, bad))
    order = {level: i for i, level in enumerate(LEVELS)}
    findings = sorted(ctx.findings, key=lambda f: (order[f.level], f.epoch if f.epoch is not None else -1, f.path))
    return CheckReport(path=root, epochs=tuple(ctx.epochs), findings=tuple(findings),
                       actions=tuple(ctx.actions), unrepairable=tuple(ctx.unrepairable), writer=ctx.writer)
