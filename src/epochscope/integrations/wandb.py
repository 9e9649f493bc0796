"""A run's pictures logged to Weights & Biases: the time-lapse, the network animation, the report.

:func:`log_run` draws them as ``epochscope render``, ``epochscope network`` and ``epochscope
report`` do and logs them to a W&B run that already exists (``wandb.init`` was called, or a
Lightning ``WandbLogger``'s ``logger.experiment``), in one history row:

=========================  ==============================================================
key (``prefix=...``)       what
=========================  ==============================================================
``epochscope/timelapse``   ``wandb.Video`` of the time-lapse GIF (one frame per epoch)
``epochscope/last_map``    ``wandb.Image`` of the last frame (the same pixels)
``epochscope/network``     ``wandb.Video`` of the network animation (runs with a dense chain)
``epochscope/report``      ``wandb.Html`` of the self-contained report (no network requests)
=========================  ==============================================================

W&B copies the files into its run folder (``files/media/...``) and uploads them when the run
syncs; in offline mode (``WANDB_MODE=offline``) they stay on disk for ``wandb sync`` later.
epochscope itself never talks to a server: only the W&B run the caller made does.

The W&B step of the row is the caller's ``step`` (default: W&B's own next step), so pictures
can be logged at the training step they show; a run with records inside an epoch can pass the
last record's step here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .._optional import require
from ..run import Run, open_run
from ._maps import maps_for

__all__ = ["log_run", "NETWORK_CHOICES"]

log = logging.getLogger("epochscope")

#: ``network=``: always (fail when the run cannot be drawn), never, or when the run holds a dense chain.
NETWORK_CHOICES = (True, False, "auto")


def _network_reason(run: Run) -> str | None:
    """Why the run's network cannot be drawn, or ``None`` when it can."""
    from ..weight_layout import find_chain

    with_weights = [e for e in run.epochs if run.has_weights(e)]
    if not with_weights:
        return "the run holds no weights"
    try:
        find_chain(run.weights(with_weights[-1]), whole=True)  # as the drawing: no layer left out
    except ValueError as err:
        return str(err)
    return None


def log_run(run: Run | str | os.PathLike[str], wandb_run: Any = None, *, layer: str | None = None,
            method: str = "umap", maps: Any = None, timelapse: bool = True, network: bool | str = "auto",
            report: bool = True, prefix: str = "epochscope", step: int | None = None, max_points: int | None = None,
            progress: bool = False, **embed_options: Any) -> dict[str, Any]:
    """Log ``run``'s time-lapse, network animation and report to a W&B run; returns what was logged.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    wandb_run : the W&B run to log to (``wandb.init(...)``'s result, or a Lightning
        ``WandbLogger().experiment``); ``None`` takes the active ``wandb.run``.
    layer, method, maps : the layer's 2-D maps: given, or embedded with :func:`epochscope.embed`
        (cached in the run), as for :func:`epochscope.render`.
    timelapse, report : log the time-lapse (and its last frame), the report.
    network : ``"auto"`` logs the network animation when the run holds the weights of a dense
        chain; ``True`` requires it (``ValueError`` saying why it cannot be drawn); ``False`` skips it.
    prefix : the keys' common prefix (W&B groups the panels by it).
    step : the W&B step of the row; ``None`` lets W&B use its next step.
    max_points : the report shows at most this many points (as :func:`epochscope.report`).
    progress : show progress bars.
    **embed_options : passed to :func:`epochscope.embed` (not together with ``maps``).

    Returns ``{key: wandb media object}`` as logged. Raises ``ValueError`` for bad arguments
    before anything is drawn, :class:`~epochscope.MissingDependencyError` without
    ``pip install 'epochscope[wandb]'``, and ``RuntimeError`` when no W&B run is active.

    Example::

        import wandb
        from epochscope.integrations.wandb import log_run

        with wandb.init(project="mnist") as wb:
            ...                                   # training, recorded into runs/mnist
            log_run("runs/mnist", wb)
    """
    if network not in NETWORK_CHOICES:
        raise ValueError(f"network must be True, False or 'auto', got {network!r}")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise ValueError(f"prefix must be a non-empty string such as 'epochscope', got {prefix!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be a non-negative integer or None, got {step!r}")
    wandb = require("wandb", extra="wandb", purpose="logging to Weights & Biases")
    if wandb_run is None:
        wandb_run = wandb.run
        if wandb_run is None:
            raise RuntimeError("no active W&B run: call wandb.init(...) first, or pass wandb_run=")
    if not isinstance(run, Run):
        run = open_run(run)
    prefix = prefix.strip("/")
    draw_network = network is True
    if network is not False:
        reason = _network_reason(run)
        if reason is not None and network is True:
            raise ValueError(f"network=True but the network of {run.path} cannot be drawn: {reason}")
        if reason is not None:
            log.info("W&B: no network animation (%s)", reason)
        draw_network = reason is None

    logged: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="epochscope-wandb-") as tmp:
        folder = Path(tmp)
        if timelapse or report:
            maps = maps_for(run, layer=layer, method=method, maps=maps, progress=progress, options=embed_options)
        if timelapse:
            from ..draw.figure import save_png
            from ..draw.timelapse import Timelapse

            lapse = Timelapse.from_run(run, maps, progress=progress)
            gif = lapse.save(folder / "timelapse.gif")
            last = save_png(lapse.frames[-1], folder / "last_map.png")
            logged[f"{prefix}/timelapse"] = wandb.Video(str(gif), format="gif",
                                                        caption=f"layer {maps.layer} · {maps.method} · "
                                                                f"epochs {lapse.epochs[0]}..{lapse.epochs[-1]}")
            logged[f"{prefix}/last_map"] = wandb.Image(str(last), caption=lapse.titles[-1])
        if draw_network:
            from ..draw.network import network_animation

            path = network_animation(run, folder / "network.gif", progress=progress)
            logged[f"{prefix}/network"] = wandb.Video(str(path), format="gif", caption="network over the epochs")
        if report:
            from ..html.report import write_report

            page = write_report(run, maps, folder / "report.html", layer=maps.layer, method=maps.method,
                                max_points=max_points)
            # inject=False: the page is whole and self-contained; W&B's injected stylesheet would alter it.
            logged[f"{prefix}/report"] = wandb.Html(page.read_text(encoding="utf-8"), inject=False)
        if logged:
            # W&B copies each file into its own run folder here, before the temporary folder goes.
            wandb_run.log(logged, step=step)
    log.info("W&B: logged %s", ", ".join(logged) or "nothing")
    return logged
