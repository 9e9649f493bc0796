"""The map methods by name, in one light module (no numpy, umap or numba imports).

The embedder (:mod:`.api`) resolves a name to its settings class through :data:`METHODS`;
the command-line modules offer :data:`METHOD_NAMES` as ``--method`` choices without
importing anything heavy.

>>> METHOD_NAMES[0]
'umap'
"""

from __future__ import annotations

__all__ = ["METHODS", "METHOD_NAMES", "DEFAULT_METHOD"]

#: method name -> (module, settings class); the module is imported only when the method is chosen.
METHODS: dict[str, tuple[str, str]] = {
    "umap": ("epochscope.maps.umap_chain", "UmapChainSettings"),
    "umap-independent": ("epochscope.maps.umap_independent", "UmapIndependentSettings"),
    "aligned-umap": ("epochscope.maps.aligned_umap", "AlignedUmapSettings"),
    "pca": ("epochscope.maps.pca", "PcaSettings"),
    "tsne": ("epochscope.maps.tsne", "TsneSettings"),
}

#: The method names, default first (for ``--method`` choices and error messages).
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)

#: What :func:`epochscope.embed` uses when no method is named.
DEFAULT_METHOD = "umap"
