"""The run directory: the contract between recording and drawing.

One package owns the run directory; everything else asks it. Recorders and importers write
through :class:`RunWriter`; the embedder, the renderers, the checker and the CLI read
through :class:`Run` (opened with :func:`open_run`). Its modules, one job each:

- :mod:`~epochscope.run.layout`: every path and name inside a run (the layout is drawn there),
  the epoch-folder naming rule, temporary names and layer file keys;
- :mod:`~epochscope.run.manifest`: :class:`Manifest` and :class:`LayerInfo`, the schema version;
- :mod:`~epochscope.run.timeline`: where each record sits in training (its step and fractional
  epoch in a run recorded inside epochs), what :attr:`Run.timeline` returns;
- :mod:`~epochscope.run.reader`: :class:`Run` and :func:`open_run`;
- :mod:`~epochscope.run.writer`: :class:`RunWriter` and :class:`EpochBuilder` (create, resume, append);
- :mod:`~epochscope.run.lock`: the single-writer lock and a probe of who holds it;
- :mod:`~epochscope.run.fileio`: atomic writes and checked, pickle-free reads;
- :mod:`~epochscope.run.summary`: the text ``epochscope info`` prints.

An epoch is written into ``epochs/.partial-NNNNNN-PID/`` and renamed to ``epochs/NNNNNN``
when complete, so the rename is the commit: a process killed at any instant leaves either
the whole epoch or none of it. Arrays are read with ``allow_pickle=False`` and memory-mapped.
"""

from __future__ import annotations

# The layout's file names and the checked readers stay importable from here, as before the
# package split ("as" marks a deliberate re-export); new code imports them from their modules.
from .fileio import load_npy as load_npy
from .fileio import load_npz as load_npz
from .layout import CACHE_DIR as CACHE_DIR
from .layout import EPOCHS_DIR as EPOCHS_DIR
from .layout import LOCK_FILE as LOCK_FILE
from .layout import MANIFEST_FILE as MANIFEST_FILE
from .layout import SPLITS as SPLITS
from .layout import layer_key
from .manifest import SCHEMA_VERSION, LayerInfo, Manifest
from .reader import Run, open_run
from .writer import EpochBuilder, RunWriter

__all__ = [
    "SCHEMA_VERSION",
    "EpochBuilder",
    "LayerInfo",
    "Manifest",
    "Run",
    "RunWriter",
    "open_run",
    "layer_key",
]
