"""Every path and name inside a run directory, in one place.

The reader, the writer, the maps cache, the checker and the importers ask this module for
a file's path instead of spelling it, so the layout can change in one place. Layout
(schema version 1)::

    RUN/
      manifest.json                 what was recorded (see Manifest)
      .lock                         held by the one process writing the run
      probe/labels.npy              int64 (n_probe,)
      probe/inputs.npy              optional, float16 (n_probe, *input_shape)
      test/labels.npy               optional, int64 (n_test,)
      test/inputs.npy               optional, float16 (n_test, *input_shape)
      probe/texts.json              optional, a JSON list of one text per probe example (bounded, UTF-8)
      test/texts.json               optional, the same for the test set
      reductions/<layer-key>.npy    only in runs recorded before the sparse projection: a wide layer's
                                    dense projection matrix (newer runs regenerate theirs from the seed)
      epochs/000000/                one folder per finished epoch, renamed into place
        probe/<layer-key>.npy       float16 (n_probe, width): the layer's outputs
        test/<layer-key>.npy        float16 (n_test, width)
        predictions.npy             int64 (n_probe,) predicted class, -1 if unknown
        test_predictions.npy        int64 (n_test,)
        weights.npz                 float32 arrays keyed by parameter name
        metrics.json                one row: loss, accuracy, val_loss, ... and times
      epochs/.partial-000001-PID/   an epoch being written (or left by a killed writer)
      cache/                        derived data (2-D maps), owned by epochscope.maps.cache

Names of files and folders written under a temporary name and renamed when complete
start with a dot and carry the writer's process id (``.manifest.json.tmp-4711``,
``epochs/.partial-000007-4711``); readers never look at them.

Example::

    layout = RunLayout(Path("runs/mnist"))
    layout.epoch_dir(3)                              # runs/mnist/epochs/000003
    layer_file(layout.epoch_dir(3), "probe", key)   # runs/mnist/epochs/000003/probe/<key>.npy
    parse_epoch_name("000003")                      # 3
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._errors import RunError

__all__ = [
    "CACHE_DIR",
    "EPOCHS_DIR",
    "EPOCH_FILES",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "REDUCTIONS_DIR",
    "ROOT_NAMES",
    "SPLITS",
    "SPLIT_FILES",
    "TEXTS_FILE",
    "WEIGHTS_FILE",
    "RunLayout",
    "check_key",
    "epoch_name",
    "is_temporary",
    "layer_file",
    "layer_key",
    "metrics_file",
    "parse_epoch_name",
    "parse_partial_epoch_name",
    "partial_epoch_name",
    "predictions_file",
    "temporary_path",
    "temporary_pid",
    "weights_file",
]

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
EPOCHS_DIR = "epochs"
REDUCTIONS_DIR = "reductions"
CACHE_DIR = "cache"
#: The example sets; each is a folder at the run's root and inside every epoch.
SPLITS = ("probe", "test")
LABELS_FILE = "labels.npy"
INPUTS_FILE = "inputs.npy"
#: The examples' texts (a text model's probe): a JSON list of strings, one per example.
TEXTS_FILE = "texts.json"
#: What a split's folder at the run's root may hold.
SPLIT_FILES = (LABELS_FILE, INPUTS_FILE, TEXTS_FILE)
PREDICTIONS_FILES = {"probe": "predictions.npy", "test": "test_predictions.npy"}
WEIGHTS_FILE = "weights.npz"
METRICS_FILE = "metrics.json"
#: Every name a finished epoch's folder may hold.
EPOCH_FILES = frozenset({*SPLITS, *PREDICTIONS_FILES.values(), WEIGHTS_FILE, METRICS_FILE})
#: Every name the run's root may hold (besides temporary files).
ROOT_NAMES = frozenset({MANIFEST_FILE, LOCK_FILE, *SPLITS, REDUCTIONS_DIR, EPOCHS_DIR, CACHE_DIR})

_EPOCH_DIGITS = 6
_EPOCH_NAME = re.compile(r"[0-9]{6,}")
_PARTIAL_PREFIX = ".partial-"
_PARTIAL_EPOCH = re.compile(r"\.partial-([0-9]{6,})-([0-9]+)(?:-.*)?")
_TRAILING_PID = re.compile(r"[-.](?:tmp-)?(\d+)$")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,80}")


# --------------------------------------------------------------------------- names


def epoch_name(epoch: int) -> str:
    """The folder name of a finished epoch: at least six digits, zero-padded.

    Any non-negative number has a name (an iteration-numbered snapshot may be epoch 1,200,000),
    and :func:`parse_epoch_name` reads every one back.

    >>> epoch_name(7), epoch_name(1_200_000)
    ('000007', '1200000')
    """
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return f"{epoch:0{_EPOCH_DIGITS}d}"


def parse_epoch_name(name: str) -> int | None:
    """The epoch number of a finished epoch's folder name, or ``None`` for any other name.

    The inverse of :func:`epoch_name`: ``parse_epoch_name(epoch_name(e)) == e`` for every
    ``e >= 0``, and only the names :func:`epoch_name` writes are accepted (``"0000007"`` is
    not epoch 7: two folders must never name one epoch).

    >>> parse_epoch_name("000007"), parse_epoch_name("1200000"), parse_epoch_name(".partial-000007-42")
    (7, 1200000, None)
    """
    if not _EPOCH_NAME.fullmatch(name):
        return None
    epoch = int(name)
    return epoch if epoch_name(epoch) == name else None


def partial_epoch_name(epoch: int, pid: int, tag: str = "") -> str:
    """The hidden folder name an epoch is written under before it is renamed into place.

    ``tag`` marks who made it (``"repair"``: a finished epoch being dropped by repair).

    >>> partial_epoch_name(7, 4711), partial_epoch_name(7, 4711, "repair")
    ('.partial-000007-4711', '.partial-000007-4711-repair')
    """
    return f"{_PARTIAL_PREFIX}{epoch_name(epoch)}-{int(pid)}" + (f"-{tag}" if tag else "")


def parse_partial_epoch_name(name: str) -> tuple[int, int] | None:
    """``(epoch, writer's pid)`` of a partial epoch folder's name, or ``None`` for any other name.

    >>> parse_partial_epoch_name(".partial-000007-4711-repair")
    (7, 4711)
    """
    m = _PARTIAL_EPOCH.fullmatch(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def temporary_path(path: Path) -> Path:
    """Where a file is written before it is renamed to ``path``: ``.NAME.tmp-PID`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is written under a temporary name and renamed when complete.

    True for ``.NAME.tmp-PID`` files, ``.tmp-*`` cache folders and ``.partial-*`` epochs;
    readers ignore such names.
    """
    return name.startswith(".") and (".tmp-" in name or name.startswith(".tmp") or name.startswith(".partial"))


def temporary_pid(name: str) -> int | None:
    """The writer's process id at the end of a temporary name (``.x.tmp-4711`` -> 4711), if any."""
    m = _TRAILING_PID.search(name)
    return int(m.group(1)) if m else None


def layer_key(name: str) -> str:
    """The file-name-safe key of a layer name: readable part plus a short hash.

    Any name maps to a single path component (no separators, no leading dot), so
    ``"../../x"`` or ``"features.0/conv"`` can never leave the run directory, and two
    names that sanitise alike still get different keys.

    >>> layer_key("features.0/conv")
    'features_0_conv-a489f531'
    """
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", name).lstrip("-")[:48] or "layer"
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def check_key(key: str, where: str) -> str:
    """Return ``key`` when it is a safe single file-name component; else raise :class:`RunError`.

    A manifest edited to hold ``"../../x"`` as a key is refused here, before any path is built.
    """
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key):
        raise RunError(f"{where}: file key {key!r} is not a safe file name; the manifest was edited or corrupted")
    return key


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


# --------------------------------------------------------------------------- files inside an epoch folder
# These take the epoch's folder, finished or partial, so the writer and the reader share them.


def layer_file(epoch_dir: Path, split: str, key: str) -> Path:
    """A layer's outputs on one split: ``EPOCH/<split>/<key>.npy`` (``key`` from :func:`layer_key`)."""
    return Path(epoch_dir) / _check_split(split) / f"{check_key(key, 'layer key')}.npy"


def predictions_file(epoch_dir: Path, split: str) -> Path:
    """The predicted classes on one split: ``EPOCH/predictions.npy`` or ``EPOCH/test_predictions.npy``."""
    return Path(epoch_dir) / PREDICTIONS_FILES[_check_split(split)]


def weights_file(epoch_dir: Path) -> Path:
    """The epoch's weights: ``EPOCH/weights.npz``."""
    return Path(epoch_dir) / WEIGHTS_FILE


def metrics_file(epoch_dir: Path) -> Path:
    """The epoch's metrics row: ``EPOCH/metrics.json``."""
    return Path(epoch_dir) / METRICS_FILE


# --------------------------------------------------------------------------- paths from the run's root


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory, from its root folder.

    Nothing is read or created here; the methods only build paths (see the module doc).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def manifest(self) -> Path:
        """``RUN/manifest.json``."""
        return self.root / MANIFEST_FILE

    @property
    def lock(self) -> Path:
        """``RUN/.lock``, held by the process writing the run."""
        return self.root / LOCK_FILE

    @property
    def epochs_dir(self) -> Path:
        """``RUN/epochs``: one folder per finished epoch."""
        return self.root / EPOCHS_DIR

    @property
    def reductions_dir(self) -> Path:
        """``RUN/reductions``: the projection matrices of reduced layers."""
        return self.root / REDUCTIONS_DIR

    @property
    def cache_dir(self) -> Path:
        """``RUN/cache``: derived data, safe to delete."""
        return self.root / CACHE_DIR

    def split_dir(self, split: str) -> Path:
        """``RUN/probe`` or ``RUN/test``."""
        return self.root / _check_split(split)

    def labels(self, split: str) -> Path:
        """``RUN/<split>/labels.npy``."""
        return self.split_dir(split) / LABELS_FILE

    def inputs(self, split: str) -> Path:
        """``RUN/<split>/inputs.npy`` (kept only for small inputs)."""
        return self.split_dir(split) / INPUTS_FILE

    def texts(self, split: str) -> Path:
        """``RUN/<split>/texts.json``: one text per example (kept for text models)."""
        return self.split_dir(split) / TEXTS_FILE

    def reduction(self, key: str) -> Path:
        """``RUN/reductions/<key>.npy``: a reduced layer's fixed projection matrix."""
        return self.reductions_dir / f"{check_key(key, 'layer key')}.npy"

    def epoch_dir(self, epoch: int) -> Path:
        """``RUN/epochs/NNNNNN``: a finished epoch's folder (it may not exist)."""
        return self.epochs_dir / epoch_name(epoch)

    def partial_epoch_dir(self, epoch: int, pid: int, tag: str = "") -> Path:
        """``RUN/epochs/.partial-NNNNNN-PID``: where an epoch is written before it is renamed into place."""
        return self.epochs_dir / partial_epoch_name(epoch, pid, tag)

    def finished_epochs(self) -> list[int]:
        """The epochs whose folders were renamed into place, ascending (``[]`` without an epochs folder).

        A link among the epochs is not an epoch (it is never followed; the checker reports it).
        """
        folder = self.epochs_dir
        try:
            entries = list(os.scandir(folder)) if not folder.is_symlink() else []
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = ((parse_epoch_name(e.name), e) for e in entries)
        return sorted(epoch for epoch, e in found if epoch is not None and e.is_dir(follow_symlinks=False))

    def partial_epoch_dirs(self) -> list[Path]:
        """The ``.partial-*`` folders among the epochs (epochs being written, or left by a killed writer)."""
        folder = self.epochs_dir
        if not folder.is_dir() or folder.is_symlink():
            return []
        return sorted(p for p in folder.iterdir() if p.name.startswith(_PARTIAL_PREFIX))
