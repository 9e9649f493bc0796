"""Progress for long work, in one place so every command shows and silences it the same way.

- On a terminal (or in a notebook) a tqdm bar on stderr.
- When stderr is a pipe or a file (CI logs, ``2> log``, a test), whole lines instead of a bar
  redrawn with carriage returns: nothing for work that ends within :data:`DELAY` seconds, then
  ``"umap hidden: 3/11 (12 s)"`` every :data:`INTERVAL` seconds, from a timer thread, so a
  step that sits in its first item (numba compiling for 40 s) still says it is working; and
  one closing line. ``enabled=False`` (``--quiet``, ``progress=False``) shows nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["DELAY", "INTERVAL", "observe", "progress", "task"]

T = TypeVar("T")

#: Seconds of work before the first progress line (shorter steps stay silent in a log);
#: ``EPOCHSCOPE_PROGRESS_DELAY`` overrides it (the tests set 0).
DELAY = float(os.environ.get("EPOCHSCOPE_PROGRESS_DELAY", "2.0"))
#: Seconds between two progress lines in a log.
INTERVAL = 10.0


def _interactive() -> bool:
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws a widget or a text bar
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


class _Ticker:
    """Prints ``desc: done/total (elapsed)`` lines to stderr from a daemon thread."""

    def __init__(self, desc: str, total: int | None) -> None:
        self.desc, self.total, self.done = desc, total, 0
        self.start = time.monotonic()
        self.printed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"epochscope progress: {desc}", daemon=True)
        self._thread.start()

    def _line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        if self.total is None and not self.done:  # a step without counts: "writing report.html: 12 s"
            return f"{self.desc}: {'done in ' if final else ''}{elapsed:.0f} s"
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        return f"{self.desc}: {count} ({'done in ' if final else ''}{elapsed:.0f} s)"

    def _emit(self, text: str) -> None:
        try:
            print(text, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed: progress is not worth an error
            pass

    def _run(self) -> None:
        due = DELAY
        while not self._stop.wait(0.25):
            if time.monotonic() - self.start >= due:
                self._emit(self._line())
                self.printed = True
                due += INTERVAL

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.printed or time.monotonic() - self.start >= DELAY:
            self._emit(self._line(final=True))


_observer = threading.local()


@contextmanager
def observe(callback) -> Iterator[None]:
    """Call ``callback(desc, done, total)`` for every step of every :func:`progress` loop run by this
    thread inside the block, shown or not (``epochscope serve`` shows the embedding's progress in
    its page). One observer per thread; the block restores the one before.

    Example::

        with observe(lambda desc, done, total: print(desc, done, total)):
            epochscope.embed(run, "hidden", progress=False)
    """
    before = getattr(_observer, "callback", None)
    _observer.callback = callback
    try:
        yield
    finally:
        _observer.callback = before


def _observed(iterable: Iterable[T], desc: str, total: int | None, callback) -> Iterator[T]:
    callback(desc, 0, total)
    for done, item in enumerate(iterable, 1):
        yield item
        callback(desc, done, total)


def progress(iterable: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """``iterable``, showing its progress on stderr (see the module doc); ``enabled=False`` shows nothing.

    Example::

        for epoch in progress(epochs, desc="umap hidden", enabled=not quiet):
            ...
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    callback = getattr(_observer, "callback", None)
    if callback is not None:
        iterable = _observed(iterable, desc, total, callback)
    if not enabled:
        return iter(iterable)
    if _interactive():
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True))
    return _lines(iterable, desc, total)


def _lines(iterable: Iterable[T], desc: str, total: int | None) -> Iterator[T]:
    ticker = _Ticker(desc, total)
    try:
        for item in iterable:
            yield item
            ticker.done += 1
    finally:
        ticker.close()


@contextmanager
def task(desc: str, *, enabled: bool = True) -> Iterator[None]:
    """Say on stderr that a step without countable items (writing a file) is still running, once
    it has run for :data:`DELAY` seconds (one line every :data:`INTERVAL` seconds, terminal or
    not); nothing when ``enabled`` is false.

    Example::

        with task("writing report.html", enabled=progress):
            path.write_text(page)
    """
    if not enabled:
        yield
        return
    ticker = _Ticker(desc, None)
    try:
        yield
    finally:
        ticker.close()
