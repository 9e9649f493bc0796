"""What a check found: :class:`Finding`, :class:`RepairAction` and the :class:`CheckReport`
that ``epochscope check`` prints.

Levels of a finding:

- ``problem``: reading this part of the run fails or gives wrong data; ``ok`` is False.
- ``warning``: harmless to readers but worth cleaning (leftovers of a killed process,
  stale caches, unknown files); ``repair`` removes leftovers and caches, never unknown files.
- ``note``: for information (a writer is recording right now, a layer added on resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["LEVELS", "CheckReport", "Finding", "RepairAction"]

#: The levels of a finding, most serious first (findings are sorted in this order).
LEVELS = ("problem", "warning", "note")


@dataclass(frozen=True)
class Finding:
    """One thing found wrong (or worth knowing) in a run.

    ``path`` is relative to the run folder, with ``/`` separators (``""`` is the run itself);
    ``epoch`` is set when the finding belongs to one epoch.
    """

    level: str
    path: str
    message: str
    epoch: int | None = None

    def __str__(self) -> str:
        return f"{self.level:<8} {self.path or '.'}: {self.message}"


@dataclass(frozen=True)
class RepairAction:
    """One change that ``repair=True`` makes (``done``) or would make (not ``done``);
    ``refused`` says why it was left undone when repair met a reason not to."""

    path: str
    what: str
    done: bool = False
    refused: str = ""
    #: JSON text written in place of the file (atomically); empty: the path is removed.
    rewrite: str = ""

    def __str__(self) -> str:
        if self.refused:
            return f"left {self.path}: {self.what} ({self.refused})"
        if self.rewrite:
            return f"{'rewrote' if self.done else 'would rewrite'} {self.path}: {self.what}"
        return f"{'removed' if self.done else 'would remove'} {self.path}: {self.what}"


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_run` found; ``str(report)`` is the text ``epochscope check`` prints.

    Attributes
    ----------
    path : the run folder.
    epochs : the finished epochs after any repair (their optimizer steps in a run numbered by step).
    unit : what the records are numbered by: ``"epoch"``, or ``"step"`` (the manifest's ``record_unit``).
    findings : every :class:`Finding`, problems first.
    actions : the :class:`RepairAction` list: done when ``repaired``, else what repair would do.
    unrepairable : damage that repair leaves alone on purpose, with what to do about it.
    repaired : whether ``repair=True`` was asked for (and the actions were carried out).
    writer : the live process writing the run right now (``"pid 123"``), or ``None``.
    refused : why repair changed nothing (a plan that would remove most of the run's epochs
        needs ``force=True``), or ``None``.
    """

    path: Path
    epochs: tuple[int, ...] = ()
    findings: tuple[Finding, ...] = ()
    actions: tuple[RepairAction, ...] = ()
    unrepairable: tuple[str, ...] = ()
    repaired: bool = False
    writer: str | None = None
    refused: str | None = None
    unit: str = "epoch"

    @property
    def problems(self) -> list[Finding]:
        """The findings that make the run (partly) unreadable or wrong."""
        return [f for f in self.findings if f.level == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth cleaning that do not stop the run from being read."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when no problem remains (warnings and notes allowed)."""
        return not self.problems

    def about(self, path: str) -> list[Finding]:
        """The findings about one file or folder (relative path) or anything inside it."""
        path = path.rstrip("/")
        return [f for f in self.findings if f.path == path or f.path.startswith(path + "/")]

    def format(self) -> str:
        """The report as text: a summary line, then one line per finding and action."""
        epochs = self.epochs
        unit = "steps" if self.unit == "step" else "epochs"
        span = f"{unit} {epochs[0]}..{epochs[-1]} ({len(epochs)})" if epochs else "no finished epochs"
        n_p, n_w = len(self.problems), len(self.warnings)
        verdict = "healthy" if self.ok else f"{n_p} problem{'s' * (n_p != 1)}"
        lines = [f"run {self.path}: {span}; {verdict}, {n_w} warning{'s' * (n_w != 1)}"]
        if self.writer:
            # the holder may be idle: a notebook whose Keras fit or Trainer.train failed keeps its run
            # until the recorder is closed there (run/lock.py: those frameworks call no hook on failure)
            lines.append(f"held by a writer, {self.writer}: a recording, or a Python session whose training "
                         "failed (call rec.close() there, or end it)")
        lines += [f"  {f}" for f in self.findings]
        if self.actions:
            done = self.repaired and not self.refused
            lines.append("repair:" if done else "`epochscope check RUN --repair` would:")
            lines += [f"  {a}" for a in self.actions]
        if self.refused:
            lines.append(f"repair refused: {self.refused}")
        lines += [f"not repaired: {u}" for u in self.unrepairable]
        return "\n".join(lines)

    __str__ = format
