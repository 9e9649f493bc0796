"""The network as a graph for drawing: node layout, per-edge values over the epochs, top-k,
scaling (numpy only), so the GIF renderer (:mod:`epochscope.draw.network`) and the HTML report
draw the same graph with the same numbers.

- :mod:`.history`: :class:`NetworkHistory` (every edge's magnitude at every epoch, scaled per
  layer) and :class:`NetworkSettings` (reference, top-k, wide-layer collapsing).
- :mod:`.edges`: edge values of one layer (``|w|``, kernel norms), :class:`EdgeFrame` (the
  edges of one frame), top-k, the line-width range both renderers use.
- :mod:`.layout`: node positions and the grouping of wide layers.

Which arrays are weights, how they are stored and how layers chain is the run's weight-layout
rule, :mod:`epochscope.weight_layout`; colours are :mod:`epochscope.colors`.

Example::

    from epochscope.network import NetworkHistory, NetworkSettings

    history = NetworkHistory.from_run(open_run("demo-out/run"))
    frame = history.frame(10, NetworkSettings(reference="initial", top_k=10))
    frame.src, frame.dst, frame.width, frame.change, frame.colors()
"""

from ..weight_layout import Link, find_chain, layer_sizes
from .edges import MAX_LINEWIDTH, MIN_LINEWIDTH, EdgeFrame, link_magnitude, max_linewidth_for, top_k_indices
from .history import CHANGE_PERCENTILE, WIDTH_PERCENTILE, NetworkHistory, NetworkSettings
from .layout import collapse, node_groups, node_layout

__all__ = [
    "CHANGE_PERCENTILE",
    "EdgeFrame",
    "Link",
    "MAX_LINEWIDTH",
    "MIN_LINEWIDTH",
    "NetworkHistory",
    "NetworkSettings",
    "WIDTH_PERCENTILE",
    "collapse",
    "find_chain",
    "layer_sizes",
    "link_magnitude",
    "max_linewidth_for",
    "node_groups",
    "node_layout",
    "top_k_indices",
]
