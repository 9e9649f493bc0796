"""What a run holds: the manifest (``manifest.json``) and the layers it lists.

Settings as plain data (STYLE.md #2): frozen dataclasses validated on creation and
serialised to JSON. The epochs are not listed in the manifest: they are the committed
epoch folders (see :mod:`epochscope.run.layout`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import RunError, unknown_name_message
from .layout import MANIFEST_FILE, check_key, layer_key
from .timeline import RECORD_UNITS

__all__ = ["SCHEMA_VERSION", "LayerInfo", "Manifest", "inputs_fingerprint", "layer_key", "schema_for"]

#: The newest version of the run directory's layout and manifest that this epochscope reads.
#: Version 1: one record per epoch, numbered by epoch. Version 2 adds ``record_unit: "step"``
#: (records inside epochs, numbered by optimizer step; see :mod:`epochscope.run.timeline`).
#: A run is written with the lowest version that holds it, so a run recorded once an epoch is
#: still version 1 and opens in an older epochscope; a step run is 2, which an older one refuses
#: instead of drawing steps as epochs.
SCHEMA_VERSION = 2


def schema_for(record_unit: str) -> int:
    """The schema version a run with this ``record_unit`` is written with (1 for ``"epoch"``, 2 for ``"step"``)."""
    return 1 if record_unit == "epoch" else 2


@dataclass(frozen=True)
class LayerInfo:
    """One recorded layer: its name, on-disk key, per-example output shape and reduction.

    ``width`` is the number of values stored per example; ``reduction`` is ``None`` when
    the output was stored as is (flattened), else a dict such as
    ``{"method": "project", "from": 25088, "to": 512, "seed": 0}``.
    """

    name: str
    key: str
    output_shape: tuple[int, ...]
    width: int
    reduction: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The layer as a JSON-ready dict (an entry of the manifest's ``layers`` list)."""
        return {**dataclasses.asdict(self), "output_shape": list(self.output_shape)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerInfo:
        """Read one ``layers`` entry; an unsafe ``key`` raises :class:`RunError`."""
        return cls(
            name=str(d["name"]),
            key=check_key(d["key"], "manifest layers"),
            output_shape=tuple(int(s) for s in d["output_shape"]),
            width=int(d["width"]),
            reduction=dict(d["reduction"]) if d.get("reduction") else None,
        )


@dataclass(frozen=True)
class Manifest:
    """What a run holds; serialised as ``manifest.json``.

    The epochs are not listed here: they are the committed epoch folders (see module doc).
    """

    framework: str
    probe_size: int
    class_names: tuple[str, ...]
    test_size: int = 0
    layers: tuple[LayerInfo, ...] = ()
    input_shape: tuple[int, ...] | None = None
    has_probe_inputs: bool = False
    has_test_inputs: bool = False
    #: ``RUN/probe/texts.json`` / ``RUN/test/texts.json`` hold the examples' texts.
    has_probe_texts: bool = False
    has_test_texts: bool = False
    created: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    #: ``{"probe": ..., "test": ...}``: :func:`inputs_fingerprint` of the examples the run was
    #: recorded on, so a resume on other examples is refused (absent when none were given).
    fingerprints: dict[str, str] = field(default_factory=dict)
    #: What a record's number counts: ``"epoch"`` (one record per epoch; every schema-1 run) or
    #: ``"step"`` (records inside epochs, numbered by optimizer step; see :mod:`epochscope.run.timeline`).
    record_unit: str = "epoch"
    #: ``None``: the version :func:`schema_for` gives ``record_unit`` (what a new manifest is written with).
    schema_version: int | None = None

    def __post_init__(self) -> None:
        if self.record_unit not in RECORD_UNITS:
            raise ValueError(f"record_unit: expected one of {RECORD_UNITS}, got {self.record_unit!r}")
        if self.schema_version is None:
            object.__setattr__(self, "schema_version", schema_for(self.record_unit))
        if self.probe_size < 1:
            raise ValueError(f"probe_size must be at least 1, got {self.probe_size}")
        if len(self.class_names) < 1:
            raise ValueError("class_names must name at least one class")

    def layer(self, name: str) -> LayerInfo:
        """The recorded layer called ``name`` (``ValueError`` listing the recorded layers if none)."""
        for info in self.layers:
            if info.name == name:
                return info
        raise ValueError(unknown_name_message("layer", name, [i.name for i in self.layers]) + " (recorded in this run)")

    def with_layer(self, info: LayerInfo) -> Manifest:
        """A copy with ``info`` appended to the layers."""
        return dataclasses.replace(self, layers=(*self.layers, info))

    def with_record_unit(self, unit: str) -> Manifest:
        """A copy whose records count ``unit`` (``"epoch"`` or ``"step"``), with that unit's schema version."""
        return dataclasses.replace(self, record_unit=unit, schema_version=None)

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict (what ``manifest.json`` holds)."""
        d = dataclasses.asdict(self)
        d["layers"] = [layer.to_json() for layer in self.layers]
        d["class_names"] = list(self.class_names)
        d["input_shape"] = list(self.input_shape) if self.input_shape is not None else None
        if self.record_unit == "epoch":
            del d["record_unit"]  # a schema-1 manifest stays exactly what it was
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = MANIFEST_FILE) -> Manifest:
        """Read a manifest dict; :class:`RunError` naming ``where`` when it is malformed or from a newer version."""
        version = d.get("schema_version")
        if not isinstance(version, int):
            raise RunError(f"{where}: no schema_version; this is not an epochscope manifest")
        if version > SCHEMA_VERSION:
            raise RunError(
                f"{where}: schema version {version} is newer than this epochscope reads ({SCHEMA_VERSION}); "
                "upgrade epochscope (pip install -U epochscope)"
            )
        try:
            manifest = cls(
                framework=str(d["framework"]),
                probe_size=int(d["probe_size"]),
                class_names=tuple(str(c) for c in d["class_names"]),
                test_size=int(d.get("test_size", 0)),
                layers=tuple(LayerInfo.from_json(x) for x in d.get("layers", [])),
                input_shape=tuple(int(s) for s in d["input_shape"]) if d.get("input_shape") is not None else None,
                has_probe_inputs=bool(d.get("has_probe_inputs", False)),
                has_test_inputs=bool(d.get("has_test_inputs", False)),
                has_probe_texts=bool(d.get("has_probe_texts", False)),
                has_test_texts=bool(d.get("has_test_texts", False)),
                created=str(d.get("created", "")),
                info=dict(d.get("info") or {}),
                fingerprints={str(k): str(v) for k, v in dict(d.get("fingerprints") or {}).items()},
                record_unit=str(d.get("record_unit", "epoch")),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise RunError(f"{where}: malformed manifest ({type(err).__name__}: {err})") from err
        if manifest.schema_version < schema_for(manifest.record_unit):
            raise RunError(f"{where}: record_unit {manifest.record_unit!r} needs schema version "
                           f"{schema_for(manifest.record_unit)}, but the manifest says {manifest.schema_version}; "
                           "the manifest was edited or damaged")
        return manifest


#: How many input values :func:`inputs_fingerprint` reads at most (about 4 million: 30 ms of hashing).
FINGERPRINT_VALUES = 2**22


def inputs_fingerprint(inputs: Any) -> str:
    """A short, cheap fingerprint of a set of examples: their shape and values.

    Two arrays of the same examples give the same fingerprint whatever their dtype (values are
    read as float64); other examples, another order or another preprocessing give another.
    Cheap on large sets: every example when they hold at most :data:`FINGERPRINT_VALUES`
    values, else evenly spaced examples up to that many values (at least 64).

    >>> inputs_fingerprint(np.zeros((3, 2))) == inputs_fingerprint(np.zeros((3, 2), np.float16))
    True

    A mapping (keyword inputs) or a list of arrays (several model inputs) is fingerprinted part by part.
    """
    if isinstance(inputs, Mapping) or isinstance(inputs, (list, tuple)):
        # Several inputs (keyword inputs such as input_ids + attention_mask, or a list of model
        # inputs): one fingerprint over each part's, in a fixed order.
        parts = sorted(inputs.items(), key=lambda kv: str(kv[0])) if isinstance(inputs, Mapping) else enumerate(inputs)
        joined = "|".join(f"{key}={inputs_fingerprint(value)}" for key, value in parts)
        return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()[:32]
    x = np.asarray(inputs)
    n = len(x) if x.ndim else 1
    per_example = int(np.prod(x.shape[1:], dtype=np.int64)) if x.ndim > 1 else 1
    digest = hashlib.sha256(repr(tuple(int(s) for s in x.shape)).encode())
    count = n if n * per_example <= FINGERPRINT_VALUES else min(n, max(64, FINGERPRINT_VALUES // max(per_example, 1)))
    rows = np.unique(np.linspace(0, n - 1, num=count).round().astype(np.int64)) if n else np.zeros(0, np.int64)
    numeric = x.dtype.kind in "biuf"
    for start in range(0, len(rows), 256):
        block = x.reshape(n, -1)[rows[start:start + 256]] if x.ndim else x.reshape(1, 1)
        block = np.ascontiguousarray(block, dtype=np.float64 if numeric else None)
        digest.update(block.tobytes() if numeric else repr(block.tolist()).encode())
    return "sha256:" + digest.hexdigest()[:32]
