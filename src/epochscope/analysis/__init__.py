"""Numbers derived from a run's recorded predictions, shared by the pictures and the report
(numpy only), so that a PNG and the HTML report can never count the same thing differently.

- :mod:`.confusion`: confusion counts, and which split a confusion matrix shows.
- :mod:`.forgetting`: per-example correctness over epochs and forgetting events.
"""

from .confusion import confusion_counts, confusion_over_epochs, confusion_split
from .forgetting import correctness, count_forgetting, forgetting_events, most_forgotten

__all__ = [
    "confusion_counts",
    "confusion_over_epochs",
    "confusion_split",
    "correctness",
    "count_forgetting",
    "forgetting_events",
    "most_forgotten",
]
