"""The maps an integration draws from: the ones given, or embedded (and cached) on demand."""

from __future__ import annotations

from typing import Any

from ..run import Run


def maps_for(run: Run, *, layer: str | None, method: str, maps: Any, progress: bool, options: dict[str, Any]) -> Any:
    """``maps`` when given (checked against ``layer``), else :func:`epochscope.embed` of ``layer``.

    Raises ``ValueError`` when ``maps`` are of another layer than ``layer``, or when embedding
    options are given together with ready maps (they would be silently ignored).
    """
    if maps is None:
        from ..maps.api import embed

        return embed(run, layer, method, progress=progress, **options)
    if layer is not None and maps.layer != layer:
        raise ValueError(f"maps are of layer {maps.layer!r} but layer={layer!r} was asked for; "
                         "pass the maps of that layer or leave layer out")
    if options:
        raise TypeError(f"embedding options {sorted(options)} were given with ready maps; "
                        "drop them or let the maps be embedded (maps=None)")
    return maps
