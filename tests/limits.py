"""A wall-clock limit for test code that could hang (a FIFO opened for reading, a lock never freed)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def time_limit(seconds: int = 20, what: str = "the code under test") -> Iterator[None]:
    """Raise ``TimeoutError`` in the main thread when the block runs longer than ``seconds`` (SIGALRM)."""

    def fail(*_):
        raise TimeoutError(f"{what} took more than {seconds} s (a FIFO opened for reading?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
