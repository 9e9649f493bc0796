"""The examples' texts kept in a run (``RUN/<split>/texts.json``): their bounds, and the one
check the writer, the reader and the checker share.

A text model's probe is sentences, not images: the report shows an example's text where an
image model shows its thumbnail. The file is a JSON list of strings, one per example of the
split, in the examples' order. It is bounded so that a run stays small and a hostile run
cannot exhaust memory:

- each text holds at most :data:`MAX_TEXT_CHARS` characters (a longer one is cut and ends
  with ``…``);
- the whole file holds at most :data:`MAX_TEXTS_BYTES` bytes (when many long texts would
  pass it, every text is cut shorter, alike, until the file fits);
- the text is valid Unicode (a lone surrogate, which UTF-8 cannot hold, becomes ``\\ufffd``).

Texts are data, never markup: whoever shows one escapes it (the report sets ``textContent``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import RunError

__all__ = ["ELLIPSIS", "MAX_TEXTS_BYTES", "MAX_TEXT_CHARS", "bound_texts", "check_texts", "parse_texts",
           "texts_size"]

#: The most characters one stored text holds.
MAX_TEXT_CHARS = 1000
#: The largest texts file written or read.
MAX_TEXTS_BYTES = 64 * 2**20
#: What a cut text ends with.
ELLIPSIS = "…"
# A lone surrogate is not Unicode text: UTF-8 cannot hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_texts(texts: Any, n: int, what: str = "texts") -> list[str]:
    """``texts`` as a list of ``n`` Python strings, or a ``TypeError``/``ValueError`` that says what to pass.

    Accepts a list, tuple or numpy array of strings (numpy's ``str_`` too), one per example.

    >>> check_texts(("a", "b"), 2)
    ['a', 'b']
    """
    if isinstance(texts, (str, bytes, Mapping)) or not hasattr(texts, "__len__") or not hasattr(texts, "__iter__"):
        raise TypeError(f"{what}: expected a list of strings, one per example, got {type(texts).__name__}; "
                        f"pass e.g. {what}=['a first text', 'a second text', ...]")
    items = list(np.asarray(texts, dtype=object).reshape(-1)) if isinstance(texts, np.ndarray) else list(texts)
    if len(items) != n:
        raise ValueError(f"{what}: expected one text per example ({n}), got {len(items)}; give the texts of exactly "
                         "these examples, in their order")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{what}[{i}]: expected a string, got {type(item).__name__} {item!r:.60}; decode bytes "
                            "first (text.decode('utf-8')) and pass one string per example")
    return [str(item) for item in items]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(0, limit - 1)] + ELLIPSIS


def texts_size(texts: Sequence[str]) -> int:
    """Bytes of the texts file holding ``texts`` (as :func:`~epochscope.run.fileio.write_json_atomic` writes it)."""
    return len(json.dumps(list(texts), indent=2).encode())


def bound_texts(texts: Sequence[str]) -> tuple[list[str], int]:
    """The texts as they are stored, and how many of them were cut.

    Each is cut to :data:`MAX_TEXT_CHARS` characters; when the file would still exceed
    :data:`MAX_TEXTS_BYTES`, every text is cut to half as many characters, until it fits.
    Lone surrogates become U+FFFD.
    """
    clean = [_SURROGATE.sub("\ufffd", t) for t in texts]
    limit = MAX_TEXT_CHARS
    stored = [_cut(t, limit) for t in clean]
    while texts_size(stored) > MAX_TEXTS_BYTES and limit > 1:
        limit //= 2
        stored = [_cut(t, limit) for t in clean]
    return stored, sum(a != b for a, b in zip(stored, clean))


def parse_texts(value: Any, n: int, where: str) -> list[str]:
    """The texts a file held (its parsed JSON), checked: a list of ``n`` strings of at most
    :data:`MAX_TEXT_CHARS` characters; else a :class:`~epochscope.RunError` naming ``where``."""
    if not isinstance(value, list):
        raise RunError(f"{where}: expected a JSON list of texts, got {type(value).__name__}")
    if len(value) != n:
        raise RunError(f"{where}: {len(value)} texts, expected one per example ({n})")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RunError(f"{where}: text {i} is {type(item).__name__}, not a string")
        if len(item) > MAX_TEXT_CHARS:
            raise RunError(f"{where}: text {i} holds {len(item)} characters, more than the {MAX_TEXT_CHARS} a "
                           "stored text may hold")
    return value
