"""A run as text: the summary ``epochscope info`` prints (and :meth:`Run.describe` returns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._text import printable
from .fileio import npz_members
from .layout import weights_file

if TYPE_CHECKING:
    from .reader import Run

__all__ = ["describe", "epoch_spans"]


def describe(run: Run) -> str:
    """A human-readable summary of ``run``: layout version, epochs, probe and test sets, layers,
    weights and the last epoch's metrics, one item per line. Names from the run (framework,
    classes, layers, weights, metrics) are shown with control characters escaped
    (:func:`epochscope._text.printable`), so a run cannot drive the terminal it is described on.

    Example::

        print(describe(epochscope.open_run("runs/mnist")))
    """
    m = run.manifest
    epochs = run.epochs
    lines = [
        f"run       {_shown(run.path, 4096)}",
        f"framework {_shown(m.framework)}   schema {m.schema_version}   created {_shown(m.created)}",
        f"epochs    {f'{epochs[0]}..{epochs[-1]} ({len(epochs)} finished)' if epochs else 'none finished'}",
        f"probe     {m.probe_size} examples, {len(m.class_names)} classes"
        + (f", inputs {tuple(m.input_shape)}" if m.has_probe_inputs and m.input_shape else ""),
        f"test      {m.test_size} examples" if m.test_size else "test      none",
        "classes   " + ", ".join(_shown(c) for c in m.class_names[:20]) + (" …" if len(m.class_names) > 20 else ""),
        "layers:",
    ]
    for info in m.layers:
        red = ""
        if info.reduction:
            r = info.reduction
            red = f"  (reduced: {_shown(r.get('method'))} {_shown(r.get('from'))} -> {_shown(r.get('to'))})"
        lines.append(f"  {_shown(info.name):<20} output {tuple(info.output_shape)}  stored {info.width} values{red}")
    if epochs:
        path = weights_file(run.epoch_dir(epochs[-1]))
        # The names only: the arrays themselves may be large, and are not read to list them.
        weights = npz_members(path, root=run.path) if run.has_weights(epochs[-1]) else []
        if weights:
            more = " …" if len(weights) > 8 else ""
            lines.append(f"weights   {len(weights)} arrays: " + ", ".join(_shown(w) for w in list(weights)[:8]) + more)
        last = run.epoch_metrics(epochs[-1])
        shown = {k: v for k, v in last.items() if k != "epoch" and isinstance(v, (int, float))}
        lines.append(f"last      epoch {epochs[-1]}: " + ", ".join(f"{_shown(k)}={v:.4g}" for k, v in shown.items()))
    return "\n".join(lines)


def _shown(name: object, limit: int = 100) -> str:
    """A name from the run as it may be printed: control characters escaped, at most ``limit`` characters."""
    text = printable(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def epoch_spans(numbers: list[int]) -> str:
    """Ascending epoch numbers as short text: ``[1, 2, 3, 7]`` -> ``"1..3, 7"``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)
