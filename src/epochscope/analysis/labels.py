"""Words for the series the pictures and the report plot, in one place: a legend says
"validation accuracy", never ``val_accuracy``.

Metric keys are the normalised names of :mod:`epochscope.metric_names`; quality keys those of
``Maps.quality``. A key without a word of its own is shown with its underscores as spaces.
"""

from __future__ import annotations

__all__ = ["SERIES_LABELS", "series_label", "split_of"]

SERIES_LABELS = {
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "probe_accuracy": "probe accuracy",
    "test_accuracy": "test accuracy",
    "loss": "training loss",
    "val_loss": "validation loss",
    "probe_loss": "probe loss",
    "test_loss": "test loss",
    "trustworthiness": "map trustworthiness",
    "motion": "map motion",
    "knn_accuracy_map": "kNN accuracy in the map",
    "knn_accuracy_layer": "kNN accuracy in the layer",
    "cka_previous": "CKA to previous epoch",
    "separation": "class separation in the map",
    "separation_layer": "class separation in the layer",
}


def series_label(key: str) -> str:
    """The words for a metric or quality key.

    >>> series_label("val_accuracy"), series_label("knn_accuracy_map"), series_label("my_metric")
    ('validation accuracy', 'kNN accuracy in the map', 'my metric')
    """
    return SERIES_LABELS.get(str(key), str(key).replace("_", " "))


def split_of(key: str) -> str:
    """The role of a metric key for its colour: ``"val"``, ``"probe"``, ``"test"`` or ``"train"``.

    >>> split_of("val_loss"), split_of("test_accuracy"), split_of("loss")
    ('val', 'test', 'train')
    """
    for prefix in ("val", "probe", "test"):
        if str(key).startswith(prefix + "_"):
            return prefix
    return "train"
