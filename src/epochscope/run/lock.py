"""The run's writer lock: one process writes a run at a time.

:class:`RunLock` is an exclusive advisory lock (``fcntl.flock``) on ``RUN/.lock``, held by
:class:`~epochscope.run.writer.RunWriter` and by ``check --repair``; :func:`lock_holder`
asks, without taking or changing anything, whether some process holds it now. On Windows
there are no advisory locks: writers take none and a single writer is the user's job.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .._errors import RunError, RunLockedError
from .fileio import is_storage_error, storage_error
from .layout import RunLayout

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

__all__ = ["RunLock", "lock_holder", "pid_alive"]


class RunLock:
    """An exclusive lock on a run, held from :meth:`acquire` until :meth:`release`.

    The lock file holds ``"pid N"`` of its holder, which a refused process names.

    Example::

        with RunLock(run_path):          # RunLockedError while another process writes the run
            ...                          # nobody else writes the run here
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = RunLayout(Path(root)).lock
        self._fh = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fh is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`~epochscope.RunLockedError` naming the process that holds it.

        The lock file is opened without following a link and must be a regular file: a ``.lock``
        that links elsewhere (or is a FIFO) is refused with :class:`~epochscope.RunError`, never
        written through. A read-only run raises :class:`~epochscope.StorageError`.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; single-writer is then the user's job
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _NONBLOCK, 0o644)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EMLINK) or self.path.is_symlink():
                raise RunError(f"{self.path}: a link (to {os.readlink(self.path)}), not the lock file epochscope "
                               "writes; epochscope never writes through a link. Delete the link and run again") from err
            if is_storage_error(err):
                raise storage_error(err, self.path, "lock the run at") from err
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            os.close(fd)
            what = "a second name (hard link) of another file" if stat.S_ISREG(st.st_mode) else "not a regular file"
            raise RunError(f"{self.path}: {what}; it is where epochscope keeps its lock and writes its process id. "
                           "Remove it and run again")
        fh = os.fdopen(fd, "r+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RunLockedError(
                f"{self.path.parent} is being written by another process ({holder}); "
                "wait for it to finish or record into another folder"
            ) from err
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
        except OSError:
            pass  # the lock is held; naming the holder is a courtesy a full disk may refuse
        self._fh = fh

    def release(self) -> None:
        """Release the lock; safe to call when it is not held."""
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(root: str | os.PathLike[str]) -> str | None:
    """Who holds the run's writer lock right now (``"pid 123"``), or ``None``; touches nothing.

    Takes a shared lock for an instant to find out, so it never blocks and never changes the
    lock file. ``None`` also where the platform has no advisory locks.
    """
    lock = RunLayout(Path(root)).lock
    if lock.is_symlink() or not lock.is_file():
        return None
    try:
        import fcntl
    except ImportError:  # Windows: writers take no lock there
        return None
    try:
        fd = os.open(lock, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return fh.read(100).strip() or "another process"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this process counts); someone else's process counts as alive.

    Used to tell a temporary file being written now from one left by a killed writer.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or an unparseable number: leave it alone
    return True
