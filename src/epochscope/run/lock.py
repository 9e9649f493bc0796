"""The run's writer lock: one process writes a run at a time.

:class:`RunLock` is an exclusive advisory lock (``fcntl.flock``) on ``RUN/.lock``, held by
:class:`~epochscope.run.writer.RunWriter` and by ``check --repair``; :func:`lock_holder`
asks, without taking or changing anything, whether some process holds it now. On Windows
there are no advisory locks: writers take none and a single writer is the user's job.

Within one process the lock also knows its holder: a second writer here is refused naming
"another recorder in this process", and takes the run over from a holder whose training ended
without releasing it (:meth:`RunLock.hand_over`: Keras' ``fit`` and the Trainer's ``train``
call no hook when they fail, so their recorder cannot release the run then).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import weakref
from collections.abc import Callable
from pathlib import Path

from .._errors import RunError, RunLockedError
from .fileio import is_storage_error, storage_error
from .layout import RunLayout

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

__all__ = ["RunLock", "lock_holder", "pid_alive"]

log = logging.getLogger("epochscope")

#: The locks this process holds, by their file's (device, inode): flock refuses a second open file
#: of this process as it refuses another process, and only this says which it is.
_HELD: weakref.WeakValueDictionary[tuple[int, int], RunLock] = weakref.WeakValueDictionary()


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
        self._key: tuple[int, int] | None = None
        self._finished: Callable[[], bool] | None = None
        self._give_up: Callable[[], None] | None = None

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
        key = (st.st_dev, st.st_ino)
        try:
            _take_or_take_over(lambda: fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB), key, self.path.parent)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            if _HELD.get(key) is not None:
                raise RunLockedError(
                    f"{self.path.parent} is being written by another recorder in this process ({holder}); "
                    "close that recorder first (rec.close()) or record into another folder"
                ) from err
            raise RunLockedError(
                f"{self.path.parent} is being written by another process ({holder}); wait for it to finish or "
                "record into another folder (a Python session whose Keras fit or Trainer.train failed holds "
                "its run until the recorder's close() is called there, or the session ends)"
            ) from err
        except BaseException:  # the holder's give_up failed: its error, and nothing left open here
            fh.close()
            raise
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
        except OSError:
            pass  # the lock is held; naming the holder is a courtesy a full disk may refuse
        self._fh = fh
        self._key = key
        _HELD[key] = self

    def hand_over(self, finished: Callable[[], bool], give_up: Callable[[], None]) -> None:
        """Let the next writer in this process take the run over once ``finished()`` says the
        training that holds the lock ended without releasing it; ``give_up()`` (the holder's own
        close, which releases this lock) is called first. Until then that writer is refused.

        For recorders whose framework calls no hook when training fails (Keras' ``fit``, the
        Trainer's ``train``); a later call replaces the earlier, and :meth:`release` forgets both.
        """
        self._finished, self._give_up = finished, give_up

    @property
    def abandoned(self) -> bool:
        """Held, and its holder's training has ended without releasing it (see :meth:`hand_over`)."""
        return self._fh is not None and self._finished is not None and bool(self._finished())

    def give_up(self) -> None:
        """The holder lets go of the run (:meth:`hand_over`'s ``give_up``), then the lock is released."""
        give_up = self._give_up
        try:
            if give_up is not None:
                give_up()
        finally:
            self.release()

    def release(self) -> None:
        """Release the lock; safe to call when it is not held."""
        self._finished = self._give_up = None
        if self._fh is not None:
            if self._key is not None and _HELD.get(self._key) is self:
                del _HELD[self._key]
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _take_or_take_over(take: Callable[[], None], key: tuple[int, int], run: Path) -> None:
    """``take()`` the lock (of the file ``key``); where a holder in this process refuses it and its
    training has ended (see :meth:`RunLock.hand_over`), that holder gives the run up and ``take()``
    is tried again. ``OSError`` while someone else holds it."""
    try:
        take()
    except OSError:
        here = _HELD.get(key)
        if here is None or not here.abandoned:
            raise
        log.info("%s: taken over from a recorder whose training ended without releasing the run", run)
        here.give_up()
        take()


def lock_holder(root: str | os.PathLike[str]) -> str | None:
    """Who holds the run's writer lock right now (``"pid 123"``), or ``None``; touches nothing.

    Takes a shared lock for an instant to find out, so it never blocks and never changes the
    lock file. ``None`` also where the platform has no advisory locks, and where this process
    holds it for a recorder whose training has ended (nobody writes the run; see :meth:`RunLock.hand_over`).
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
        st = os.fstat(fd)
        here = _HELD.get((st.st_dev, st.st_ino))
        if not stat.S_ISREG(st.st_mode) or (here is not None and here.abandoned):
            os.close(fd)  # held here by a recorder whose training has ended: nobody writes the run
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
