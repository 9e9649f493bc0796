"""A run as text: the summary ``epochscope info`` prints (and :meth:`Run.describe` returns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import RunError
from .._text import plural, printable
from .fileio import npz_members
from .layout import weights_file
from .timeline import cut_short_epochs

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
    # An importer's stand-in probe (one example of class 0, no prediction) and its invented class
    # names are not data: say what the run holds instead (see epochscope/importers/_common.py).
    placeholder = (m.info or {}).get("probe") == "placeholder"
    lines = [
        f"run       {_shown(run.path, 4096)}",
        f"framework {_shown(m.framework)}   schema {m.schema_version}   created {_shown(m.created)}",
        "epochs    " + (f"{epochs[0]}..{epochs[-1]} ({len(epochs):,} finished)" if epochs else "none finished"),
    ]
    cut = {e: why for e, why in cut_short_epochs(m.info or {}).items() if e not in set(epochs)}
    if cut:  # training stopped inside them: not recorded as whole epochs (run/timeline.py)
        lines.append("cut short " + "; ".join(f"epoch {e} ({_shown(why, 200)})" for e, why in sorted(cut.items())[:5])
                     + (f" and {len(cut) - 5} more" if len(cut) > 5 else "") + ": not recorded, no whole epoch's")
    if m.record_unit == "step":  # records inside epochs, numbered by optimizer step (run/timeline.py)
        lines[-1] = "records   " + (f"steps {epochs[0]}..{epochs[-1]} ({len(epochs):,} finished)" if epochs
                                    else "none finished") + ", numbered by optimizer step"
        if epochs:
            try:
                last = run.timeline
                lines.append(f"time      last record: {last.label(epochs[-1])}")
            except RunError as err:
                lines.append(f"time      {_shown(str(err), 300)}")
    if placeholder:
        source = str((m.info or {}).get("imported_from") or m.framework).removesuffix(" checkpoints")
        lines += [f"probe     none: imported from {_shown(source)} checkpoints, which hold weights and metrics only",
                  f"classes   {len(m.class_names)} outputs (names not recorded)"]
    else:
        lines += [
            f"probe     {plural(m.probe_size, 'example')}, {plural(len(m.class_names), 'class', 'classes')}"
            + (f", inputs {tuple(m.input_shape)}" if m.has_probe_inputs and m.input_shape else ""),
            f"test      {plural(m.test_size, 'example')}" if m.test_size else "test      none",
            "classes   " + ", ".join(_shown(c) for c in m.class_names[:20]) + (" …" if len(m.class_names) > 20 else ""),
        ]
    lines.append("layers:" if m.layers else "layers    none recorded")
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
        shown = {k: v for k, v in last.items() if k != "epoch" and isinstance(v, (int, float))
                 and not isinstance(v, bool)}
        unit = "step" if m.record_unit == "step" else "epoch"
        lines.append(f"last      {unit} {epochs[-1]}: " + ", ".join(f"{_shown(k)}={_value(k, v)}" for k, v in shown.items()))
    return "\n".join(lines)


def _value(key: str, value: float) -> str:
    """A metric as a person reads it: ``wall_time`` as a UTC date, durations in seconds."""
    import datetime as dt
    import math

    if key == "wall_time" and math.isfinite(value) and 0 < value < 1e11:
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if (key in ("elapsed",) or key.endswith(("_seconds", "_time"))) and math.isfinite(value):
        return f"{value:.3g} s"
    return f"{value:.4g}"


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
