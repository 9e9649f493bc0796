"""Turn whatever labels a user has (ints, floats, one-hot, strings) into class indices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["class_vocabulary", "encode_labels", "encode_splits"]


def _kind_and_names(y: object, what: str) -> tuple[str, set[str] | int]:
    """``("strings", {names})`` or ``("indices", largest index)`` of one label array (checked by encode_labels)."""
    indices, names = encode_labels(y, what=what)
    arr = np.asarray(y)
    if arr.ndim == 1 and arr.dtype.kind in "USO":
        return "strings", set(names)
    return "indices", int(indices.max())


def class_vocabulary(labels: Sequence[tuple[str, object]], class_names: Sequence[str] | None = None) -> tuple[str, ...]:
    """One list of class names for every split of a recording (probe, test...).

    ``labels`` holds ``(what, y)`` pairs (``("probe labels", y_probe)``). With ``class_names``
    given they are the vocabulary; otherwise it is the sorted union of the string labels of
    every split, or ``"0".."k-1"`` for integer labels with ``k - 1`` the largest index in any
    split. So a test set that lacks one of the probe's classes still names every class as the
    probe does, and an example of class ``"c"`` is class ``"c"`` in both.

    Raises ``ValueError`` when one split gives strings and another numbers.

    >>> class_vocabulary([("probe labels", ["b", "c", "a"]), ("test labels", ["c", "d"])])
    ('a', 'b', 'c', 'd')
    """
    if class_names is not None:
        return tuple(str(c) for c in class_names)
    kinds = [(what, *_kind_and_names(y, what)) for what, y in labels]
    if len({kind for _, kind, _ in kinds}) > 1:
        forms = ", ".join(f"{what} are {'strings' if kind == 'strings' else 'class indices'}" for what, kind, _ in kinds)
        raise ValueError(f"labels: {forms}; give every split in one form (all strings or all integers), "
                         "or pass class_names")
    if kinds and kinds[0][1] == "strings":
        union: set[str] = set()
        for _, _, names in kinds:
            union |= names  # type: ignore[arg-type]
        return tuple(sorted(union))
    largest = max((int(top) for _, _, top in kinds), default=0)  # type: ignore[call-overload]
    return tuple(str(i) for i in range(largest + 1))


def encode_splits(labels: Sequence[tuple[str, object]],
                  class_names: Sequence[str] | None = None) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Every split's labels as class indices into ONE vocabulary (:func:`class_vocabulary`).

    >>> encode_splits([("probe labels", ["a", "b", "c"]), ("test labels", ["b", "c"])])[0][1]
    array([1, 2])
    """
    names = class_vocabulary(labels, class_names)
    return [encode_labels(y, names, what=what)[0] for what, y in labels], names


def encode_labels(y: object, class_names: Sequence[str] | None = None, *,
                  what: str = "labels") -> tuple[np.ndarray, tuple[str, ...]]:
    """Return ``(indices, class_names)`` for labels given as integers, integral floats,
    one-hot / probability rows, or strings.

    With ``class_names`` given, string labels are looked up by name and integer labels must
    lie in ``range(len(class_names))``; without, names are ``"0".."k-1"`` for integers and the
    sorted distinct strings for strings. One-hot (or probability) rows ``(N, k)`` give the
    argmax of each row. ``indices`` is int64 ``(N,)``.

    Raises ``ValueError`` (its message starts with ``what``) for no labels, labels that are
    neither 1-D nor 2-D, float labels that are not whole numbers, an integer outside
    ``class_names`` or a string not among them.

    >>> encode_labels(["cat", "dog", "cat"])
    (array([0, 1, 0]), ('cat', 'dog'))
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] > 1:
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{what}: a 2-D array must be one-hot or class scores, got dtype {arr.dtype}")
        arr = arr.argmax(axis=1)
    elif arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected one label per example (1-D) or one-hot rows (2-D), got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError(f"{what}: no labels given")

    if arr.dtype.kind in "USO":
        strings = np.array([str(v) for v in arr])
        names = tuple(class_names) if class_names is not None else tuple(sorted(set(strings.tolist())))
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(strings.tolist()) - set(index))
        if unknown:
            raise ValueError(f"{what}: labels {unknown[:5]} are not among class_names {list(names)[:20]}")
        return np.array([index[s] for s in strings], dtype=np.int64), names

    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{what}: float labels must be whole numbers (class indices); "
                             f"got e.g. {arr[arr != np.round(arr)][:3]}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what}: expected integer, one-hot or string labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise ValueError(f"{what}: class indices must be >= 0, got {arr.min()}")
    if class_names is None:
        names = tuple(str(i) for i in range(int(arr.max()) + 1))
    else:
        names = tuple(str(c) for c in class_names)
        if arr.max() >= len(names):
            raise ValueError(f"{what}: class index {arr.max()} but only {len(names)} class_names were given")
    return arr, names
