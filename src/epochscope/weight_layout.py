"""The run's weight-layout rule: how recorded weights are named and stored, and the chain of
layers they form (numpy only).

A run's ``weights.npz`` holds float32 arrays keyed by parameter name. Everything that reads
weights without the model (the network drawing, the importers that name an imported run's
classes or put Chainer links in forward order) asks this module, so the rule lives in one place:

- **Names.** ``<layer>.weight`` (every recorder and importer writes this) or ``<layer>/W``
  (a Chainer link), both stored out x in (``(out, in)`` dense, ``(out, in, *kernel)`` conv);
  ``<layer>/kernel`` is a raw Keras kernel, stored in x out (``(in, out)``, ``(*kernel, in, out)``).
  Biases sit next to them as ``<layer>.bias`` / ``<layer>/b``.
- **The chain.** Weight layers are taken in recording order; one follows another where its
  inputs are the other's outputs, which gives the layer sizes (e.g. 4-5-5-5-3) with no model
  at hand. A dense layer after a conv whose inputs are a multiple of the conv's channels reads
  the conv's flattened output (a ``"flatten"`` link).
- **Flatten order.** How a flattened conv output is ordered cannot be read from the shapes:
  channel-major (``c * HW + hw``) or position-major (``hw * C + c``, channels-last models).
  The recorder that wrote the run declares it in ``manifest.info[FLATTEN_ORDER_KEY]``
  (``"channels_first"`` or ``"channels_last"``); a run that declares nothing is channel-major.
  Raw in x out kernels (``<layer>/kernel``) come from channels-last models and are read so.

Example::

    chain = find_chain(run.weights(run.epochs[-1]))
    layer_sizes(chain)       # (4, 5, 5, 5, 3)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import RunError, unknown_name_message

__all__ = [
    "FLATTEN_ORDER_KEY",
    "FLATTEN_ORDERS",
    "Link",
    "find_chain",
    "flatten_order",
    "layer_sizes",
    "weight_layers",
]

log = logging.getLogger("epochscope")

#: Key of ``manifest.info`` where a recorder declares how a flattened conv output is ordered.
FLATTEN_ORDER_KEY = "flatten_order"
#: ``"channels_first"``: ``c * HW + hw`` (the default); ``"channels_last"``: ``hw * C + c``.
FLATTEN_ORDERS = ("channels_first", "channels_last")

_WEIGHT_SUFFIX = re.compile(r"^(?P<name>.+?)[./](?P<kind>weight|W|kernel)$")
_BIAS_NAMES = ("bias", "b")


def flatten_order(info: Mapping[str, Any] | None) -> str:
    """The flatten order a run declares in its ``manifest.info`` (``"channels_first"`` when it
    declares none). Raises :class:`~epochscope.RunError` for a value that is not one of
    :data:`FLATTEN_ORDERS`.

    >>> flatten_order({"flatten_order": "channels_last"}), flatten_order({})
    ('channels_last', 'channels_first')
    """
    value = (info or {}).get(FLATTEN_ORDER_KEY, FLATTEN_ORDERS[0])
    if value not in FLATTEN_ORDERS:
        raise RunError(f"manifest.json: info.{FLATTEN_ORDER_KEY} must be one of {', '.join(FLATTEN_ORDERS)}, "
                       f"got {value!r}; fix or remove the entry")
    return str(value)


@dataclass(frozen=True)
class Link:
    """One weight layer of the chain, joining column ``i`` (``n_in`` nodes) to ``i + 1`` (``n_out``).

    ``kind`` is ``"dense"``, ``"conv"`` (channel to channel) or ``"flatten"`` (a dense layer
    fed by a conv's flattened output: ``spatial`` inputs per channel). ``layout`` says how the
    array is stored: ``"out_in"`` (the run's own layout, Chainer's) or ``"in_out"`` (raw Keras
    kernels). ``channels_last`` says a flattened conv output was ordered position-major
    (``hw * C + c``) rather than channel-major (``c * HW + hw``).
    """

    name: str
    weight_key: str
    bias_key: str | None
    kind: str
    n_in: int
    n_out: int
    layout: str = "out_in"
    spatial: int = 1
    shape: tuple[int, ...] = ()
    channels_last: bool = False


def weight_layers(weights: Mapping[str, Any]) -> list[Link]:
    """Every array of ``weights`` that looks like a dense or conv weight, as an unchained
    :class:`Link`, in recording order. Only the arrays' shapes are read (anything with a
    ``shape`` will do).

    >>> [lk.name for lk in weight_layers({"a.weight": np.zeros((5, 4)), "a.bias": np.zeros(5)})]
    ['a']
    """
    return _candidates(weights)


def _candidates(weights: Mapping[str, Any]) -> list[Link]:
    """Every array that looks like a dense or conv weight, as an unchained Link, in given order."""
    found = []
    for key, array in weights.items():
        m = _WEIGHT_SUFFIX.match(key)
        shape = tuple(np.shape(array))
        if not m or len(shape) < 2 or len(shape) > 5:
            continue
        name, kind = m.group("name"), m.group("kind")
        sep = key[len(name)]
        bias = next((f"{name}{sep}{b}" for b in _BIAS_NAMES if f"{name}{sep}{b}" in weights), None)
        layout = "in_out" if kind == "kernel" else "out_in"
        if len(shape) == 2:
            n_out, n_in = shape if layout == "out_in" else shape[::-1]
            found.append(Link(name, key, bias, "dense", int(n_in), int(n_out), layout, 1, shape))
        else:
            n_out, n_in = shape[:2] if layout == "out_in" else (shape[-1], shape[-2])
            found.append(Link(name, key, bias, "conv", int(n_in), int(n_out), layout, 1, shape))
    return found


def _joined(prev: Link, cur: Link, channels_last: bool = False) -> Link | None:
    """``cur`` adjusted to follow ``prev``, or None when the sizes do not connect."""
    if prev.n_out == cur.n_in:
        return cur
    if prev.kind == "conv" and cur.kind == "dense" and cur.n_in % prev.n_out == 0:
        return Link(cur.name, cur.weight_key, cur.bias_key, "flatten", prev.n_out, cur.n_out, cur.layout,
                    cur.n_in // prev.n_out, cur.shape, channels_last or cur.layout == "in_out")
    return None


def _runs(links: Sequence[Link], channels_last: bool = False) -> list[list[Link]]:
    """Split links into maximal connected runs."""
    runs: list[list[Link]] = []
    for link in links:
        joined = _joined(runs[-1][-1], link, channels_last) if runs else None
        if joined is None:
            runs.append([link])
        else:
            runs[-1].append(joined)
    return runs


def _describe(links: Sequence[Link]) -> str:
    return ", ".join(f"{lk.name} {lk.shape}" for lk in links) or "none"


def find_chain(weights: Mapping[str, np.ndarray], *, layers: Sequence[str] | None = None,
               shape: Sequence[int] | None = None, channels_last: bool = False,
               whole: bool = False) -> tuple[Link, ...]:
    """Find the chain of dense (and conv) layers in one epoch's weights.

    Parameters
    ----------
    weights : ``{parameter name: array}`` as :meth:`Run.weights` returns it.
    layers : the layers to chain, in order (names such as ``"l1"`` or keys such as
        ``"l1.weight"``); by default the longest connected run of weight layers in recording order.
    shape : the expected layer sizes (e.g. ``(4, 5, 5, 5, 3)``), checked against the whole chain
        (or the chosen ``layers``); a mismatch raises a ``ValueError`` naming the difference, also
        when ``shape`` matches only part of the chain.
    channels_last : a dense layer after a conv reads the flattened output position-major
        (``hw * C + c``); see :func:`flatten_order` for where a run declares it.
    whole : without ``layers``, the chain must hold every weight layer: weight layers that do
        not connect in recording order (a branch, a second head, layers recorded out of the
        model's forward order) raise a ``ValueError`` naming them rather than leaving them out
        of the longest run (what a drawing asks; the importers take the longest run).

    Raises ``ValueError`` when no array is a weight, when chosen layers do not connect, when
    ``shape`` differs from the weights, or (``whole``) when weight layers fall outside the chain;
    ``TypeError`` when ``layers`` is a string.

    >>> w = {"a.weight": np.zeros((5, 4)), "a.bias": np.zeros(5), "b.weight": np.zeros((3, 5))}
    >>> layer_sizes(find_chain(w))
    (4, 5, 3)
    """
    candidates = _candidates(weights)
    if not candidates:
        raise ValueError(
            "weights: expected arrays named '<layer>.weight', '<layer>/W' or '<layer>/kernel' with 2 or more "
            f"dimensions, got {list(weights)[:12] or 'no arrays'}; record the run with weights (weights='auto')"
        )
    if layers is not None:
        chosen = _pick(candidates, layers)
        chain = [chosen[0]]
        for link in chosen[1:]:
            joined = _joined(chain[-1], link, channels_last)
            if joined is None:
                raise ValueError(
                    f"layers: layer '{link.name}' takes {link.n_in} inputs but '{chain[-1].name}' gives "
                    f"{chain[-1].n_out} outputs, so they do not form a chain; choose layers that follow each other "
                    f"(weight layers: {_describe(candidates)})"
                )
            chain.append(joined)
    else:
        runs = _runs(candidates, channels_last)
        chain = max(runs, key=len)
        if shape is not None:
            # A shape describes the whole network: one that matches only part of it is a mistake
            # to report, not a reason to draw that part silently.
            want = tuple(int(s) for s in shape)
            part = _match_shape(runs, want)
            if part is not None and layer_sizes(part) != layer_sizes(chain):
                left = [lk.name for lk in chain if lk.name not in {p.name for p in part}]
                raise ValueError(
                    f"shape: {'-'.join(map(str, want))} matches only layer{'s' if len(part) > 1 else ''} "
                    f"{', '.join(lk.name for lk in part)} of the network {'-'.join(map(str, layer_sizes(chain)))} "
                    f"({_describe(chain)}); it leaves out {', '.join(left)}. Give all the sizes "
                    f"({' '.join(map(str, layer_sizes(chain)))}) or pick the layers to draw with layers= (--layers)"
                )
        skipped = [lk.name for lk in candidates if lk.name not in {c.name for c in chain}]
        if skipped and whole:
            raise ValueError(_not_one_chain(runs, chain, candidates, channels_last))
        if skipped:
            log.info("weights: the chain of layers is %s; layers outside it: %s",
                     "-".join(str(s) for s in layer_sizes(chain)), ", ".join(skipped))
    if shape is not None:
        _check_shape(chain, tuple(int(s) for s in shape))
    return tuple(chain)


def _not_one_chain(runs: Sequence[Sequence[Link]], chain: Sequence[Link], candidates: Sequence[Link],
                   channels_last: bool = False) -> str:
    """Why the weight layers are no one chain, with the runs they form and how to name the layers."""
    drawn = {lk.name for lk in chain}
    left = [lk for lk in candidates if lk.name not in drawn]
    reordered = _reordered(runs, channels_last)
    example = (f"--layers {' '.join(lk.name for lk in reordered)} if that is the model's order (by their shapes "
               "they chain so)" if reordered else f"--layers {' '.join(lk.name for lk in chain)} for the longest chain")
    return (f"weights: the weight layers do not form one chain by their shapes in recording order "
            f"({' | '.join(' -> '.join(f'{lk.name} {lk.shape}' for lk in run) for run in runs)}): a branch, "
            f"a second head or layers recorded out of the model's forward order, which the shapes cannot tell; "
            f"drawing the longest chain would leave out {_describe(left)}. Name the layers to draw, in the "
            f"model's forward order, with layers= (--layers NAME ...), e.g. {example}")


#: Above this many runs, no other order of them is sought (the orders grow as its factorial).
_MAX_REORDERED_RUNS = 6


def _reordered(runs: Sequence[Sequence[Link]], channels_last: bool = False) -> list[Link] | None:
    """The one order of ``runs`` (each kept as it is) in which they chain into one, or ``None``
    when there is none or more than one (then the shapes suggest nothing). An order that feeds a
    dense layer into a conv is no suggestion: shapes may chain so by chance (a ResNet's 1x1
    downsample conv after its classifier), and the drawing it leads to would be nonsense."""
    from itertools import permutations

    if not 1 < len(runs) <= _MAX_REORDERED_RUNS:
        return None
    found = None
    for order in permutations(range(len(runs))):
        chain = list(runs[order[0]])
        for i in order[1:]:
            if chain[-1].kind != "conv" and runs[i][0].kind == "conv":
                break
            joined = _joined(chain[-1], runs[i][0], channels_last)
            if joined is None:
                break
            chain += [joined, *runs[i][1:]]
        else:
            if found is not None:
                return None
            found = chain
    return found


def _pick(candidates: list[Link], layers: Sequence[str]) -> list[Link]:
    by_name = {lk.name: lk for lk in candidates} | {lk.weight_key: lk for lk in candidates}
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of layer names, got the string {layers!r}; write [{layers!r}]")
    if not layers:
        raise ValueError("layers must name at least one weight layer")
    picked = []
    for name in layers:
        if name not in by_name:
            raise ValueError(unknown_name_message("weight layer", str(name), [lk.name for lk in candidates]))
        picked.append(by_name[name])
    return picked


def _match_shape(runs: list[list[Link]], shape: tuple[int, ...]) -> list[Link] | None:
    n = len(shape) - 1
    for run in runs:
        for start in range(len(run) - n + 1):
            window = run[start:start + n]
            if n > 0 and layer_sizes(window) == shape:
                return window
    return None


def _check_shape(chain: Sequence[Link], shape: tuple[int, ...]) -> None:
    sizes = layer_sizes(chain)
    if len(shape) != len(sizes):
        raise ValueError(
            f"shape: expected {len(sizes)} sizes for the chain {'-'.join(map(str, sizes))} "
            f"({_describe(chain)}), got {len(shape)}: {'-'.join(map(str, shape))}; pass layers= (--layers) to pick other layers"
        )
    for i, (want, got) in enumerate(zip(shape, sizes)):
        if want != got:
            link = chain[i - 1] if i > 0 else chain[0]
            side = "outputs" if i > 0 else "inputs"
            raise ValueError(
                f"shape: size {i} is {want} but layer '{link.name}' (weights {link.shape}) has {got} {side}; "
                f"the weights give {'-'.join(map(str, sizes))}"
            )


def layer_sizes(chain: Sequence[Link]) -> tuple[int, ...]:
    """Nodes per column: the first layer's inputs, then every layer's outputs (e.g. ``(4, 5, 3)``)."""
    if not chain:
        return ()
    return (chain[0].n_in, *(lk.n_out for lk in chain))
