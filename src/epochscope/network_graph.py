"""Compatibility path for the network model's old single module (removed once every importer
uses the new homes): the model is :mod:`epochscope.network`, the weight chain
:mod:`epochscope.weight_layout`, the colours :mod:`epochscope.colors`. Nothing is defined here.
"""

from .colors import GREW_RGB, NEUTRAL_RGB, SHRANK_RGB, diverging_rgb, rgb_to_hex
from .network import (
    CHANGE_PERCENTILE,
    WIDTH_PERCENTILE,
    EdgeFrame,
    Link,
    NetworkHistory,
    NetworkSettings,
    collapse,
    find_chain,
    layer_sizes,
    link_magnitude,
    node_groups,
    node_layout,
    top_k_indices,
)

__all__ = [
    "Link", "NetworkSettings", "NetworkHistory", "EdgeFrame", "find_chain", "layer_sizes", "link_magnitude",
    "node_groups", "collapse", "node_layout", "top_k_indices", "diverging_rgb", "rgb_to_hex", "GREW_RGB",
    "SHRANK_RGB", "NEUTRAL_RGB", "WIDTH_PERCENTILE", "CHANGE_PERCENTILE",
]
