"""What every recorder is told, as plain data checked once: :class:`RecordSettings`.

The PyTorch, Keras and Lightning recorders take the same keyword arguments (``layers``,
``class_names``, ``weights``, ``probe_size``, ``batch_size``, ``reduce``...). Each adapter
turns them into one frozen :class:`RecordSettings` (:func:`settings_from_options`), which
validates them in ``__post_init__``, and hands it to the framework-free core
(:class:`epochscope.record.core.RecordingSession`). No adapter repeats these checks.

This module imports no framework.
"""

from __future__ import annotations

import collections
import inspect
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np

from .._errors import unknown_name_message

__all__ = ["OPTION_NAMES", "REDUCE_METHODS", "TOKEN_REDUCTIONS", "RecordSettings", "RecorderCallback", "Reduction",
           "settings_from_options", "with_options_signature"]

REDUCE_METHODS = ("project", "pool", "none")
#: What a recorder does when the disk is full while it writes an epoch (see RecordSettings.on_disk_full).
ON_DISK_FULL = ("raise", "skip")
#: How a sequence output (examples, tokens, features) is stored: see :class:`RecordSettings`.
TOKEN_REDUCTIONS = ("mean", "first", "last", "none")


def _count(name: str, value: Any, *, minimum: int, what: str) -> int:
    """``value`` as an int >= ``minimum`` (numpy integers too; bools and floats refused)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}; pass a whole number") from None
    if number < minimum:
        raise ValueError(f"{name}: expected {what}, got {number}; pass a number >= {minimum}")
    return number


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _items(name: str, value: Any, *, what: str, example: str) -> tuple[Any, ...]:
    """The items of a list/tuple (or any iterable but a string or a mapping) as a tuple."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a list of {what}, got {type(value).__name__} {value!r}; "
                        f"pass e.g. {name}={example}")
    return tuple(value)


def _names(name: str, value: Any, *, what: str, example: str) -> tuple[str, ...]:
    """A tuple of non-empty strings (layer or weight names)."""
    items = _items(name, value, what=what, example=example)
    bad = [item for item in items if not isinstance(item, str) or not item]
    if bad:
        raise TypeError(f"{name}: expected a list of {what} (non-empty strings), got {bad[0]!r} among them; "
                        f"pass e.g. {name}={example}")
    return tuple(str(item) for item in items)


@dataclass(frozen=True)
class Reduction:
    """How to store layers wider than ``max_width`` values per example.

    - ``"project"`` (default): a fixed, very sparse random projection to ``width`` values
      (:class:`~epochscope.record.projection.SparseProjection`), generated from ``seed``, so
      the same at every epoch and after a resume without being stored (the manifest records
      the seed and density); it preserves distances between examples up to a small
      distortion (Johnson–Lindenstrauss), so maps stay faithful. Runs recorded before it
      stored a dense Gaussian matrix in ``RUN/reductions/`` and keep using it.
    - ``"pool"``: average over the spatial axes of a conv output (N, C, H, W) -> (N, C);
      projected as well if the channels alone are still wider than ``max_width``.
    - ``"none"``: store every value (runs get large).

    Raises ``ValueError`` for an unknown method or widths that are not positive or where
    ``width`` exceeds ``max_width``.

    >>> Reduction("pool", max_width=1024)
    Reduction(method='pool', max_width=1024, width=512, seed=0)
    """

    method: str = "project"
    max_width: int = 2048
    width: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in REDUCE_METHODS:
            raise ValueError(f"reduce: expected one of {', '.join(map(repr, REDUCE_METHODS))}, got {self.method!r}; "
                             "'project' keeps distances between examples, 'pool' averages conv outputs over space")
        if self.max_width < 1 or self.width < 1:
            raise ValueError(f"max_width and reduced_width (Reduction.width): expected positive numbers, got "
                             f"{self.max_width} and {self.width}; the defaults are 2048 and 512")
        if self.width > self.max_width:
            raise ValueError(f"reduced_width (Reduction.width): expected at most max_width ({self.max_width}), "
                             f"got {self.width}; a reduced layer must be narrower than the width that triggers the reduction")


@dataclass(frozen=True)
class RecordSettings:
    """What to record and how, shared by every recorder (PyTorch, Keras, Lightning).

    Plain data, validated once when created; the probe and test examples themselves are
    not part of it (each framework holds them in its own types).

    Parameters
    ----------
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    layers : names of the layers whose outputs are recorded (a single name is accepted);
        duplicates are dropped, order kept. ``()`` records predictions, weights and
        metrics only. ``"name@k"`` records the k-th call of a layer the forward pass calls
        several times, ``"name[i]"`` / ``"name[key]"`` one part of a layer that returns a
        structure (see :mod:`epochscope.record.layer_spec`).
    class_names : optional names, one per class (distinct).
    weights : ``"auto"`` (every Linear/Dense and Conv layer), a list of layer (or, in
        PyTorch, parameter) names, or ``None`` for no weights.
    probe_size : draw a class-balanced subset of this many examples from the probe
        (``None``: every example).
    batch_size : examples per forward pass during capture.
    reduce, max_width, reduced_width : how layers wider than ``max_width`` values per
        example are stored (see :class:`Reduction`; ``reduced_width`` is its ``width``).
    tokens : how a sequence output ``(examples, tokens, features)`` is stored: ``"mean"``
        over its tokens (default; only the real tokens when the inputs carry an attention or
        padding mask), the ``"first"`` or ``"last"`` (real) token, or ``"none"`` (every token,
        flattened; projected when wider than ``max_width``). The manifest records which.
    keep_inputs : keep small inputs (<= 4,096 values each) for thumbnails and the report.
    seed : seed of the probe subset and of the projection.
    resume : append to an existing run at ``run_dir`` (``False``: refuse if one exists).
    on_disk_full : ``"raise"`` (default): a full disk while an epoch is written raises
        :class:`~epochscope.StorageError`, which stops training with that one message;
        ``"skip"``: the epoch is left out with a warning and training goes on (a later epoch
        is recorded once there is space again). Finished epochs are kept either way.
    overwrite : start a fresh run at ``run_dir``, removing the run it holds (only ever a
        folder that is an epochscope run; anything else there is refused).
    replace_epochs : recording an epoch the run already holds (training resumed from an
        earlier checkpoint) replaces that epoch and every later one; ``False`` (default)
        refuses it with a message that says how to go on.
    binary_threshold : the class-1 threshold of a model with one output; ``None`` (default)
        decides once, at the first capture, from all of its outputs: ``0.5`` when every value
        lies in [0, 1] (probabilities), else ``0`` (logits). Kept in the manifest, so every
        epoch, also after a resume, uses the same rule.
    every_n_epochs : record the end of every N-th epoch (default 1: every epoch); the model
        before training and the last epoch trained (also when training stops early) are
        always recorded: see :mod:`epochscope.record.schedule` for when each recorder knows
        an epoch is the last.
    every_n_steps : also record inside epochs, every N optimizer steps (batches); the run's
        records are then numbered by step and each keeps its fractional epoch (see
        :mod:`epochscope.record.schedule`). ``None`` (default): epoch ends only.
    steps_per_epoch : the batches in one epoch (``len(train_loader)``), which the PyTorch
        recorder needs to place a record inside an epoch (the callbacks ask their framework);
        ``None``: such records' epoch is unknown and the pictures use a step axis.

    Raises ``TypeError``/``ValueError`` naming the parameter, what was expected, what was
    given and what to do.

    >>> s = RecordSettings("runs/mnist", layers="hidden", probe_size=2000)
    >>> s.layers, s.reduction.method
    (('hidden',), 'project')
    """

    run_dir: str
    layers: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    weights: str | tuple[str, ...] | None = "auto"
    probe_size: int | None = None
    batch_size: int = 256
    reduce: str = "project"
    max_width: int = 2048
    reduced_width: int = 512
    tokens: str = "mean"
    keep_inputs: bool = True
    seed: int = 0
    resume: bool = True
    on_disk_full: str = "raise"
    overwrite: bool = False
    replace_epochs: bool = False
    binary_threshold: float | None = None
    # When to record (see epochscope.record.schedule); checked by _check_schedule.
    every_n_epochs: int = 1
    every_n_steps: int | None = None
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalised values are set once, here
        if not isinstance(self.run_dir, (str, os.PathLike)) or not os.fspath(self.run_dir):
            raise TypeError(f"run_dir: expected a folder path (str or pathlib.Path), got {self.run_dir!r}; "
                            "pass e.g. run_dir='runs/mnist'")
        put(self, "run_dir", os.fspath(self.run_dir))
        layers = (self.layers,) if isinstance(self.layers, str) else self.layers
        put(self, "layers", tuple(dict.fromkeys(_names("layers", layers, what="layer names", example="['hidden']"))))
        if self.class_names is not None:
            # str() as encode_labels does for integer labels: class_names=range(10) names "0".."9".
            names = tuple(str(n) for n in _items("class_names", self.class_names, what="class names",
                                                 example="['cat', 'dog']"))
            if not names:
                raise ValueError("class_names: expected one name per class, got an empty list; pass the names or None")
            # Counted once (not names.count per name): 100,000 classes are checked at once, not in minutes.
            twice = sorted(n for n, k in collections.Counter(names).items() if k > 1)
            if twice:
                raise ValueError(f"class_names: expected distinct names, got {twice[:5]} more than once; "
                                 "give each class its own name")
            put(self, "class_names", names)
        if isinstance(self.weights, str):
            if self.weights != "auto":
                raise ValueError(f"weights: expected 'auto', None or a list of layer names, got {self.weights!r}; "
                                 "pass weights='auto' for every Linear/Dense and Conv layer")
        elif self.weights is not None:
            put(self, "weights", _names("weights", self.weights, what="layer names", example="['hidden']"))
        if self.probe_size is not None:
            put(self, "probe_size", _count("probe_size", self.probe_size, minimum=1,
                                           what="a number of examples >= 1 or None"))
        put(self, "batch_size", _count("batch_size", self.batch_size, minimum=1, what="a positive number of examples"))
        put(self, "max_width", _count("max_width", self.max_width, minimum=1, what="a positive number of values"))
        put(self, "reduced_width", _count("reduced_width", self.reduced_width, minimum=1,
                                          what="a positive number of values"))
        put(self, "seed", _count("seed", self.seed, minimum=0, what="a seed >= 0"))
        for name in ("keep_inputs", "resume", "overwrite", "replace_epochs"):
            put(self, name, _flag(name, getattr(self, name)))
        if self.on_disk_full not in ON_DISK_FULL:
            raise ValueError(f"on_disk_full: expected one of {', '.join(map(repr, ON_DISK_FULL))}, got "
                             f"{self.on_disk_full!r}; 'raise' stops training on a full disk, 'skip' leaves the epoch out")
        if self.tokens not in TOKEN_REDUCTIONS:
            raise ValueError(f"tokens: expected one of {', '.join(map(repr, TOKEN_REDUCTIONS))}, got {self.tokens!r}; "
                             "'mean' averages a sequence output over its (real) tokens")
        if self.binary_threshold is not None:
            if isinstance(self.binary_threshold, bool) or not isinstance(self.binary_threshold, (int, float, np.number)) \
                    or not np.isfinite(self.binary_threshold):
                raise TypeError(f"binary_threshold: expected a finite number or None, got {self.binary_threshold!r}; "
                                "pass 0.5 for probabilities, 0 for logits, or None to decide from the outputs")
            put(self, "binary_threshold", float(self.binary_threshold))
        self.reduction  # noqa: B018  (checks reduce/max_width/reduced_width together)
        _check_schedule(self)

    @property
    def reduction(self) -> Reduction:
        """The :class:`Reduction` these settings describe (``reduced_width`` is its ``width``)."""
        return Reduction(self.reduce, self.max_width, self.reduced_width, self.seed)


def _check_schedule(settings: RecordSettings) -> None:
    """Check (and normalise) ``every_n_epochs``, ``every_n_steps`` and ``steps_per_epoch``."""
    put = object.__setattr__
    put(settings, "every_n_epochs", _count("every_n_epochs", settings.every_n_epochs, minimum=1,
                                           what="a number of epochs >= 1"))
    for name in ("every_n_steps", "steps_per_epoch"):
        if getattr(settings, name) is not None:
            put(settings, name, _count(name, getattr(settings, name), minimum=1,
                                       what="a number of optimizer steps >= 1, or None"))


#: The keyword arguments every recorder takes besides its framework's own (model, probe, test).
OPTION_NAMES = tuple(f.name for f in fields(RecordSettings) if f.name not in ("run_dir", "layers"))


def settings_from_options(run_dir: Any, layers: Any, options: Mapping[str, Any], *, who: str) -> RecordSettings:
    """:class:`RecordSettings` from a recorder's ``run_dir``, ``layers`` and keyword ``options``.

    ``who`` names the recorder in the message for an unknown keyword (``"Recorder"``).

    >>> settings_from_options("runs/x", ["hidden"], {"batch_size": 64}, who="Recorder").batch_size
    64
    """
    for name in options:
        if name not in OPTION_NAMES:
            raise TypeError(f"{who}() got an unexpected keyword argument {name!r}: "
                            + unknown_name_message("argument", name, OPTION_NAMES))
    return RecordSettings(run_dir, layers, **options)


F = TypeVar("F", bound=Callable[..., Any])


def with_options_signature(init: F) -> F:
    """Show :data:`OPTION_NAMES` (with their defaults) in place of ``**options`` in ``init``'s
    signature, so ``help(Recorder)`` and notebooks list every keyword argument."""
    signature = inspect.signature(init)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    defaults = {f.name: f.default for f in fields(RecordSettings)}
    options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name]) for name in OPTION_NAMES]
    init.__signature__ = signature.replace(parameters=[*kept, *options])  # type: ignore[attr-defined]
    return init


class RecorderCallback:
    """The constructors every callback recorder shares (Keras, Lightning): put it first among
    the bases, before the framework's ``Callback``, and define ``_start(probe, test, settings)``.

    ``Recorder(layers, probe, run_dir, test=None, **options)`` builds the settings from
    keywords; ``Recorder.from_settings(probe, settings, test=None)`` takes them built.
    """

    @with_options_signature
    def __init__(self, layers: Any, probe: Any, run_dir: Any, test: Any = None, **options: Any) -> None:
        super().__init__()  # the framework's Callback
        self._start(probe, test, settings_from_options(run_dir, layers, options, who=type(self).__name__))

    @classmethod
    def from_settings(cls, probe: Any, settings: RecordSettings, test: Any = None) -> Any:
        """A callback from settings already built (one settings object, several recorders)."""
        recorder = cls.__new__(cls)
        super(RecorderCallback, recorder).__init__()  # the framework's Callback
        recorder._start(probe, test, settings)
        return recorder

    def _start(self, probe: Any, test: Any, settings: RecordSettings) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _start(probe, test, settings)")
