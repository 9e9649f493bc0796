"""Progress bars for long work, in one place so every command silences them the same way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr; ``enabled=False`` (``--quiet``) shows nothing.

    tqdm hides the bar by itself when stderr is not a terminal (CI logs stay clean).
    """
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, desc=desc, total=total, disable=None if enabled else True, leave=False))
