"""The confusion matrix of the test set (or the probe set without one) at one epoch.

Example::

    ConfusionDisplay.from_run(run).plot().figure_.savefig("confusion.png")        # last epoch
    ConfusionDisplay.from_run(run, epoch=3).plot().figure_.savefig("confusion_epoch_3.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._text import plural
from ..analysis.confusion import (
    MAX_FULL_CLASSES,
    confusion_classes,
    confusion_counts,
    confusion_split,
    confusion_summary,
)
from ..colors import INK
from . import style
from .figure import FigureDisplay, as_run, new_figure

__all__ = ["ConfusionDisplay"]


@dataclass
class ConfusionDisplay(FigureDisplay):
    """Counts of true class (rows) against predicted class (columns), with the accuracy in the title.

    Counted by :func:`epochscope.analysis.confusion_counts`, on the split
    :func:`epochscope.analysis.confusion_split` names (the test set when the run has one), as the
    HTML report does. Attributes after :meth:`plot`: ``figure_``, ``ax_``, ``im_``, ``text_``
    (the count labels, ``None`` when there are too many classes to print them).

    With more than :data:`~epochscope.analysis.confusion.MAX_FULL_CLASSES` classes it shows the
    20 classes most often confused and one "all other classes" row and column
    (``n_classes`` says how many there are, ``correct`` counts the right answers over all):
    counted without any ``n_classes x n_classes`` array, so 20,000 classes cost no more memory
    than their examples.
    """

    counts: np.ndarray
    class_names: Sequence[str]
    epoch: int | None = None
    split: str = "test"
    unknown: int = 0
    #: How the title names the record (``"epoch 0.26 · step 120"`` in a run recorded inside epochs; ``None``: ``"epoch N"``).
    epoch_label: str | None = None
    #: predictions of a class the run does not name (a model with more outputs than classes)
    outside: int = 0
    correct: int | None = None
    n_classes: int | None = None

    @property
    def accuracy(self) -> float:
        """Share of examples predicted right, among all examples (examples without a prediction, or
        predicted as a class outside the run's classes, count as wrong)."""
        total = int(self.counts.sum()) + self.unknown + self.outside
        right = float(np.trace(self.counts)) if self.correct is None else float(self.correct)
        return right / total if total else float("nan")

    @property
    def reduced(self) -> bool:
        """Whether only some classes are shown (the last row and column pool the others)."""
        return self.n_classes is not None and self.n_classes > len(self.class_names) - 1

    @classmethod
    def from_run(cls, run, *, epoch: int | None = None, split: str | None = None) -> ConfusionDisplay:
        """From the predictions the run recorded at ``epoch`` (default: the last one).

        ``split`` is ``"test"`` (default when the run recorded a test set) or ``"probe"``.
        Raises ``ValueError`` for another split, a test split the run lacks, a run without epochs,
        or a run imported from checkpoints (its one-example probe is a placeholder, not data).
        """
        display = cls._from_run(as_run(run), epoch=epoch, split=split)
        if display.epoch is not None and as_run(run).manifest.record_unit == "step":
            display.epoch_label = as_run(run).timeline.label(display.epoch)
        return display

    @classmethod
    def _from_run(cls, run, *, epoch: int | None, split: str | None) -> ConfusionDisplay:
        from ..analysis import run_contents

        epochs = run.epochs
        if not epochs:
            raise ValueError(f"the run {run.path} has no finished epoch yet")
        contents = run_contents(run)
        if not contents.predictions:
            raise ValueError(f"the run {run.path} holds no predictions to count: "
                             f"{contents.skipped_note().split(': ', 1)[-1]}; draw its curves or network instead")
        epoch = epochs[-1] if epoch is None else int(epoch)
        if split is None:
            split = confusion_split(run)
        if split not in ("test", "probe"):
            raise ValueError(f"split must be 'test' or 'probe', got {split!r}")
        if split == "test":
            if not run.has_test:
                raise ValueError(f"the run {run.path} recorded no test set; use split='probe'")
            y_true, y_pred = run.test_labels, run.test_predictions(epoch)
        else:
            y_true, y_pred = run.labels, run.predictions(epoch)
        n = len(run.class_names)
        # Predictions the counts leave out: none recorded (-1) or a class the run does not name.
        unknown, outside = int((y_pred < 0).sum()), int((y_pred >= n).sum())
        if n > MAX_FULL_CLASSES:
            classes = confusion_classes(y_true, y_pred, n)
            summary = confusion_summary(y_true, y_pred, n, classes)
            names = [run.class_names[c] for c in classes] + [f"all other {n - len(classes):,} classes"]
            return cls(counts=summary.counts, class_names=names, epoch=epoch, split=split, unknown=unknown,
                       outside=outside, correct=summary.correct, n_classes=n)
        return cls(counts=confusion_counts(y_true, y_pred, n), class_names=run.class_names, epoch=epoch, split=split,
                   unknown=unknown, outside=outside)

    def plot(self, ax=None, *, values: bool | None = None) -> ConfusionDisplay:
        """Draw on ``ax`` (or a new off-screen figure); ``values`` prints the counts (default: up to
        30 classes); returns ``self``."""
        n = len(self.class_names)
        own = ax is None
        if own:
            side = min(max(4.5, 0.5 * n + 2.5), 16)
            ax = new_figure((side, side * 0.92)).add_subplot()
        fig = ax.get_figure(root=True)
        self.im_ = ax.imshow(self.counts, cmap="Blues", interpolation="nearest")
        values = n <= 30 if values is None else values
        self.text_ = None
        if values:
            peak = self.counts.max() if self.counts.size else 0
            self.text_ = np.empty((n, n), dtype=object)
            for i in range(n):
                for j in range(n):
                    c = int(self.counts[i, j])
                    self.text_[i, j] = ax.text(j, i, str(c), ha="center", va="center",
                                               fontsize=9 if n <= 12 else 7,
                                               color="white" if peak and c > 0.5 * peak else INK)
        ticks = np.arange(n)
        fontsize = 9 if n <= 20 else 6
        names = [style.plain(style.short(c, 24)) for c in self.class_names]
        slanted = n > 10 or max(len(c) for c in names) > 3
        ax.set_xticks(ticks, names, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                      rotation_mode="anchor" if slanted else "default", fontsize=fontsize)
        ax.set_yticks(ticks, names, fontsize=fontsize)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        where = "Test set" if self.split == "test" else "Probe set"
        if self.reduced:
            where += f", the {n - 1} most confused of {self.n_classes:,} classes"
        when = f" at {self.epoch_label or f'epoch {self.epoch}'}" if self.epoch is not None else ""
        total = int(self.counts.sum()) + self.unknown + self.outside
        # Short lines: long class names narrow the axes, and one long line was cut off at the figure's edge.
        left_out = [f"{self.unknown} without prediction" if self.unknown else "",
                    f"{self.outside} predicted outside the classes" if self.outside else ""]
        notes = ", ".join(n for n in left_out if n)
        title = f"{where}{when}\naccuracy {self.accuracy:.3f} ({plural(total, 'example')})"
        ax.set_title(title + (f"\n{notes}" if notes else ""), fontsize=style.FONT_SIZE + 1)
        if own:
            fig.tight_layout()
        self.figure_, self.ax_ = fig, ax
        return self
