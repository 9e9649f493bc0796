"""Text from a run, made safe to print on a terminal.

A run may come from someone else, and its class, layer, metric and framework names are
whatever was recorded: an escape sequence in one (``\\x1b]0;…\\x07`` sets the window title,
``\\x1b[2J`` clears the screen, ``\\x1b]52;…`` writes the clipboard) would act on the user's
terminal if printed as it is. :func:`printable` shows every control character escaped instead,
so the name reads as what it is. Everything the command line prints goes through it, and the
text helpers that format names from a run (``epochscope info``, ``check``) apply it to each name.

:func:`relative_paths` takes this machine's folders out of a message for a page that may be read
elsewhere (``epochscope serve``'s answers, the report's data).
"""

from __future__ import annotations

import os
import re
import unicodedata

__all__ = ["plural", "printable", "relative_paths"]

_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _is_control(c: str) -> bool:
    # C0, DEL and C1 controls; Unicode format characters (bidirectional overrides and isolates,
    # zero-width characters), which reorder or hide text; line and paragraph separators; lone
    # surrogates (undecodable bytes).
    return unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def _escape(c: str) -> str:
    code = ord(c)
    return _SHORT.get(c) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object, *, keep: str = "") -> str:
    """``str(text)`` with every control character shown escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    ``keep``: control characters to leave as they are (``"\\n"`` for text of several lines whose
    line breaks are ours). Printable text, accents and scripts included, is unchanged.

    >>> printable("cat\\x1b]0;pwned\\x07"), printable("a\\nb", keep="\\n")
    ('cat\\\\x1b]0;pwned\\\\x07', 'a\\nb')
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escape(c) if c not in keep and _is_control(c) else c for c in text)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the word, in the singular for one: ``"1 epoch"``, ``"2 epochs"``, ``"1,000 classes"``.

    >>> plural(1, "epoch"), plural(2, "class", "classes")
    ('1 epoch', '2 classes')
    """
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


# A path ends at a space, a quote, a bracket or punctuation that follows one in a message; it starts
# where no path character comes before it ("probe/x" inside "a/probe/x" is not a path of its own).
_NOT_BEFORE = r"(?<![\w.~/-])"
_PATH_END = r"(?=$|[\s'\"`),;:\]])"
_ABSOLUTE = re.compile(_NOT_BEFORE + r"/[^\s'\"`),;:\]]*")


def relative_paths(text: str, logdir: str | os.PathLike[str], *, name: str = "LOGDIR") -> str:
    """``text`` (an error line from reading a run) with no absolute path of this machine in it: a path
    inside LOGDIR relative to LOGDIR (``sweep/b/manifest.json``; LOGDIR itself reads ``name``), and a
    path outside it by its last part only (``…/secret.npy``, a link's target). For what the server
    answers and the report's data: a page, possibly on another machine, learns nothing of the
    folders of the machine that made it.

    >>> relative_paths("/srv/exp/logs/a/manifest.json: unreadable", "/srv/exp/logs")
    'a/manifest.json: unreadable'
    >>> relative_paths("a link (to /home/me/secret.npy) in /srv/exp/logs", "/srv/exp/logs")
    'a link (to …/secret.npy) in LOGDIR'
    """
    roots = {os.path.abspath(logdir), os.path.realpath(logdir)}
    for root in sorted(roots, key=len, reverse=True):
        if root == os.sep:
            continue  # LOGDIR "/": every path is below it, and every one already reads from "/"
        here = re.escape(root)
        text = re.sub(_NOT_BEFORE + here + "/", "", text)
        text = re.sub(_NOT_BEFORE + here + _PATH_END, lambda _: name, text)
    return _ABSOLUTE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1] if m.group(0) != "/" else "/",
                         text)
