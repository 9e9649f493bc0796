"""epochscope: watch a neural network learn.

A recorder (``epochscope.torch``, ``epochscope.keras``, ``epochscope.lightning``) writes,
at every epoch, what chosen layers output on a fixed probe set and what the weights are,
into a run directory. :func:`embed` adds 2-D maps of a layer to the run; :func:`render`,
:func:`network_animation` and :func:`report` draw pictures from it
(:func:`show_report`: the report inline in a notebook). Each picture is also a
Display object (``CurvesDisplay.from_run(run).plot(ax=None)``, scikit-learn's habit) that shows
itself inline in a notebook.

Importing ``epochscope`` is light: torch, keras, umap and matplotlib load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import (
    EpochscopeError,
    MissingDependencyError,
    NotARunError,
    OutputError,
    OutputPathError,
    RunError,
    RunLockedError,
    StorageError,
)
from ._version import __version__
from .record.labels import encode_labels
from .record.probe import stratified_probe
from .record.settings import RecordSettings, Reduction
from .run import SCHEMA_VERSION, LayerInfo, Manifest, Run, RunWriter, open_run

# Public names that live in modules with heavy imports: resolved on first access.
_LAZY = {
    "load_dataset": "epochscope.datasets",
    "embed": "epochscope.maps.api",
    "Maps": "epochscope.maps.api",
    "render": "epochscope.pipeline",
    "report": "epochscope.pipeline",
    "network_animation": "epochscope.draw.network",
    "ConfusionDisplay": "epochscope.draw.confusion",
    "CurvesDisplay": "epochscope.draw.curves",
    "ForgettingDisplay": "epochscope.draw.forgetting",
    "LayerEpochGrid": "epochscope.draw.multiples",
    "MapDisplay": "epochscope.draw.timelapse",
    "NetworkDisplay": "epochscope.draw.network",
    "QualityDisplay": "epochscope.draw.quality",
    "SamplesDisplay": "epochscope.draw.samples",
    "Timelapse": "epochscope.draw.timelapse",
    "TrainTestMapDisplay": "epochscope.draw.testmap",
    "import_chainer": "epochscope.importers.chainer",
    "import_checkpoints": "epochscope.importers.checkpoints",
    "check_run": "epochscope.checking",
    "show_report": "epochscope.integrations.notebook",
}

__all__ = [
    "__version__",
    "SCHEMA_VERSION",
    "ConfusionDisplay",
    "CurvesDisplay",
    "EpochscopeError",
    "ForgettingDisplay",
    "LayerEpochGrid",
    "LayerInfo",
    "Manifest",
    "MapDisplay",
    "Maps",
    "MissingDependencyError",
    "NetworkDisplay",
    "NotARunError",
    "OutputError",
    "OutputPathError",
    "QualityDisplay",
    "RecordSettings",
    "Reduction",
    "Run",
    "RunError",
    "RunLockedError",
    "StorageError",
    "RunWriter",
    "SamplesDisplay",
    "Timelapse",
    "TrainTestMapDisplay",
    "check_run",
    "embed",
    "encode_labels",
    "import_chainer",
    "import_checkpoints",
    "load_dataset",
    "network_animation",
    "open_run",
    "render",
    "report",
    "show_report",
    "stratified_probe",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'epochscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
