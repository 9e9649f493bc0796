"""Numbers derived from a run's recorded predictions, shared by the pictures and the report
(numpy only), so that a PNG and the HTML report can never count the same thing differently.

- :mod:`.confusion`: confusion counts, and which split a confusion matrix shows.
- :mod:`.forgetting`: per-example correctness over epochs and forgetting events.
- :mod:`.placement`: how far to trust where a test point was laid on a map.
- :mod:`.contents`: what a run holds to draw (an imported run has no probe activations).
"""

from .confusion import (
    MAX_FULL_CLASSES,
    ConfusionSummary,
    confusion_classes,
    confusion_counts,
    confusion_over_epochs,
    confusion_split,
    confusion_summary,
)
from .contents import RunContents, run_contents
from .forgetting import correctness, count_forgetting, forgetting_events, most_forgotten
from .labels import series_label, split_of
from .placement import Placement, placement_quality

__all__ = [
    "MAX_FULL_CLASSES",
    "ConfusionSummary",
    "confusion_classes",
    "confusion_summary",
    "Placement",
    "RunContents",
    "confusion_counts",
    "confusion_over_epochs",
    "confusion_split",
    "correctness",
    "count_forgetting",
    "forgetting_events",
    "most_forgotten",
    "run_contents",
    "series_label",
    "split_of",
    "placement_quality",
]
