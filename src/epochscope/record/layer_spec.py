"""What a name in ``layers=[...]`` asks for: a layer, which of its calls, which part of its output.

A layer name is first looked up as it is. When no layer has that name, two suffixes are
understood (framework-free; the PyTorch and Keras adapters both read them):

- ``"name@k"``: the *k*-th call of a layer that the forward pass calls several times
  (one activation module reused after every block, a weight-tied or recurrent cell),
  counted from 1 in the order the forward pass calls it. Without it, a layer called more
  than once is refused: which call to record would be a guess.
- ``"name[i]"`` / ``"name[key]"`` (repeatable): one part of a layer that returns a structure
  (a tuple, a dict, a named tuple, a Hugging Face ``ModelOutput``): ``"lstm[1][0]"`` is
  ``h_n`` of an ``nn.LSTM``'s ``(output, (h_n, c_n))``; ``"encoder[last_hidden_state]"`` a
  field by name. Without it, a structure records its first tensor.

Both can be combined (``"cell@3[0]"``). The name stored in the run is the whole text.

>>> parse_layer_spec("lstm@2[1][0]", lambda name: name == "lstm")
LayerSpec(name='lstm@2[1][0]', layer='lstm', call=2, path=(1, 0))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LayerSpec", "base_name", "parse_layer_spec", "path_text"]

_SPEC = re.compile(r"(?P<layer>.+?)(?:@(?P<call>\d+))?(?P<path>(?:\[[^\[\]]+\])*)")
_PART = re.compile(r"\[([^\[\]]+)\]")


@dataclass(frozen=True)
class LayerSpec:
    """One entry of ``layers``: the ``layer`` to hook, its ``call`` (1-based, ``None``: the only
    call) and the ``path`` into a structured output (``()``: the output itself, or its first tensor)."""

    name: str
    layer: str
    call: int | None = None
    path: tuple[int | str, ...] = ()


def _part(text: str) -> int | str:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_layer_spec(name: str, exists: Callable[[str], bool]) -> LayerSpec | None:
    """The :class:`LayerSpec` of ``name``, or ``None`` when neither it nor its base name is a layer.

    ``exists(layer_name)`` says whether the model has a layer of that name; an exact name
    always wins over the suffixes.

    Raises ``ValueError`` for a call number below 1.
    """
    if exists(name):
        return LayerSpec(name, name)
    m = _SPEC.fullmatch(name)
    if m is None or not (m["call"] or m["path"]) or not exists(m["layer"]):
        return None
    call = int(m["call"]) if m["call"] else None
    if call is not None and call < 1:
        raise ValueError(f"layers: '{name}' asks for call {call}; calls are counted from 1 ('{m['layer']}@1' is the first)")
    return LayerSpec(name, m["layer"], call, tuple(_part(p) for p in _PART.findall(m["path"] or "")))


def base_name(name: str) -> str:
    """``name`` without an ``@k`` or ``[...]`` suffix (for "did you mean" messages)."""
    m = _SPEC.fullmatch(name)
    return m["layer"] if m else name


def path_text(path: tuple[int | str, ...]) -> str:
    """``(1, 0)`` -> ``"[1][0]"``."""
    return "".join(f"[{p}]" for p in path)
