"""Which file is wrong when files disagree with the manifest.

The manifest declares the sizes every array of the run follows: ``probe_size`` and
``test_size`` (the first axis of labels, inputs, layer outputs and predictions), each layer's
``width`` (the second axis of its outputs) and ``input_shape``. When an array's shape
disagrees, either that file or the manifest is wrong. One wrong value in the manifest makes
*every* file that follows it disagree alike, so:

- when at least two files follow a declared size and all of them agree on another value, the
  manifest is the one to blame: one problem on ``manifest.json`` says which field and what the
  files hold, and the files themselves are not reported (nothing of them is damaged);
- otherwise each disagreeing file is reported.

Either way a disagreement is never damage: repair deletes nothing for it (see
:mod:`.context`). :class:`Agreement` collects what the checks saw and decides at the end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..run.layout import MANIFEST_FILE
from ..run.summary import epoch_spans
from .context import CheckContext, Header

__all__ = ["Agreement"]


@dataclass(frozen=True)
class _Seen:
    path: Path
    shape: tuple[int, ...]
    expected: tuple[int, ...]
    fields: tuple[str | None, ...]  # the manifest field deciding each axis (None: not declared there)
    what: str
    epoch: int | None


class Agreement:
    """The shapes seen in one pass, and who is to blame for those that disagree (see the module doc)."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._seen: list[_Seen] = []
        #: field -> (its declared value, how it is shown in the manifest)
        self._declared: dict[str, tuple[int, str]] = {}

    def declare(self, field: str, value: int, shown: str) -> str:
        """Name a manifest field that decides an axis (``shown``: how the user finds it in manifest.json)."""
        self._declared[field] = (int(value), shown)
        return field

    def observe(self, path: Path, header: Header, expected: tuple[int, ...], fields: tuple[str | None, ...],
                what: str, epoch: int | None = None) -> None:
        """An array's header against the shape the manifest declares for it."""
        self._seen.append(_Seen(path, header.shape, tuple(expected), tuple(fields), what, epoch))

    def resolve(self) -> None:
        """Report every disagreement: on the manifest when the files agree among themselves, else per file."""
        ctx = self.ctx
        values: dict[str, list[tuple[_Seen, int]]] = defaultdict(list)
        for seen in self._seen:
            if len(seen.shape) != len(seen.expected):
                continue
            for axis, field in enumerate(seen.fields):
                if field is not None:
                    values[field].append((seen, seen.shape[axis]))
        blamed: set[str] = set()
        for field, held in values.items():
            declared, shown = self._declared[field]
            found = {value for _, value in held}
            if len(held) >= 2 and len(found) == 1 and declared not in found:
                (value,) = found
                epochs = sorted({s.epoch for s, _ in held if s.epoch is not None})
                files = sorted({ctx.rel(s.path) for s, _ in held if s.epoch is None})
                where = ", ".join(files + ([f"every epoch ({epoch_spans(epochs)})"] if epochs else []))
                ctx.add("problem", MANIFEST_FILE,
                        f"{shown} is {declared}, but every file it describes holds {value} ({where}); manifest.json "
                        f"was edited or damaged: set {shown} to {value}. The files are whole: no epoch is removed "
                        "for this")
                ctx.unrepairable.append(f"manifest.json: set {shown} to {value} (what every file holds); repair "
                                        "never rewrites the manifest")
                blamed.add(field)
        for seen in self._seen:
            if seen.shape == seen.expected:
                continue
            if len(seen.shape) == len(seen.expected) and all(
                    got == want or field in blamed
                    for got, want, field in zip(seen.shape, seen.expected, seen.fields)):
                continue  # explained by the manifest's wrong value
            ctx.add("problem", seen.path, f"shape {seen.shape}, expected {seen.expected} ({seen.what})", seen.epoch)
