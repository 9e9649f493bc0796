"""The time-lapse: one map frame per embedded epoch, drawn once and written as PNG, GIF and MP4.

Example::

    maps = epochscope.embed(run, "hidden")
    lapse = Timelapse.from_run(run, maps)                   # draws every frame once
    lapse.save_frames("out/frames")                         # frames/epoch_000.png, ...
    lapse.save("out/timelapse.gif")                         # 500 ms per frame, loops forever
    lapse.save("out/timelapse.mp4")
    lapse.smooth(steps=6).save("out/timelapse_smooth.gif")  # positions eased between epochs
    lapse                                                   # in a notebook: the animation, inline

:class:`MapDisplay` is one epoch's frame alone (the same pixels as ``frames/epoch_NNN.png``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress as progress_bar
from .animate import check_animation_path, gif_bytes, write_animation
from .figure import FrameDisplay, as_run, check_maps, save_png
from .mapframe import MapFrameRenderer

__all__ = ["MapDisplay", "Timelapse", "epoch_caption", "map_subtitle", "ease_steps"]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def epoch_caption(metrics: Mapping[str, Any] | None, trustworthiness: float | None = None) -> str:
    """The line under a map frame: the epoch's accuracy figures and the map's trustworthiness.

    >>> epoch_caption({"accuracy": 0.91, "val_accuracy": 0.875}, 0.9512)
    'accuracy 0.910 · val accuracy 0.875 · map trustworthiness 0.951'
    """
    parts = []
    for key, name in (("accuracy", "accuracy"), ("val_accuracy", "val accuracy")):
        value = _number((metrics or {}).get(key))
        if value is not None:
            parts.append(f"{name} {value:.3f}")
    tw = _number(trustworthiness)
    if tw is not None:
        parts.append(f"map trustworthiness {tw:.3f}")
    return " · ".join(parts)


def map_subtitle(maps: Any) -> str:
    """``"layer hidden · umap"``: which layer a map shows and how it was made."""
    return f"layer {maps.layer} · {maps.method}"


def ease_steps(steps: int) -> np.ndarray:
    """``steps`` interpolation weights in [0, 1) that start and end slowly (smoothstep).

    >>> ease_steps(4).round(3).tolist()
    [0.0, 0.156, 0.5, 0.844]
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    t = np.arange(steps) / steps
    return t * t * (3 - 2 * t)


def _frame_index(maps: Any, epoch: int | None) -> tuple[int, int]:
    """``(index, epoch)`` of ``epoch`` in ``maps.epochs`` (default: the last); ``ValueError`` if absent."""
    epochs = [int(e) for e in maps.epochs]
    if not epochs:
        raise ValueError("the maps hold no epoch; there is nothing to draw")
    epoch = epochs[-1] if epoch is None else int(epoch)
    if epoch not in epochs:
        raise ValueError(f"epoch {epoch} is not in the maps (epochs {epochs[0]}..{epochs[-1]})")
    return epochs.index(epoch), epoch


def _metrics_rows(run: Any, epochs: Sequence[int]) -> list[Mapping[str, Any]]:
    """The run's metrics row of each epoch (empty where it has none)."""
    rows = {int(m.get("epoch", -1)): m for m in run.metrics}
    return [rows.get(int(e), {}) for e in epochs]


@dataclass
class Timelapse(FrameDisplay):
    """Frames of a map, one per epoch, ready to be written as PNG, GIF or MP4.

    Build it with :meth:`from_maps` or :meth:`from_run`; each frame is drawn once and
    reused for every output format. In a notebook it shows itself as the animated GIF
    (``_repr_html_``); :meth:`plot` shows one frame (``_repr_png_``: the last).

    Attributes
    ----------
    frames : list of ``(H, W, 3)`` uint8 arrays, all the same size.
    epochs : the epoch each frame shows (for the file names).
    duration_ms : display time of each frame in animations.
    titles, captions : the text drawn on each frame.
    """

    frames: list[np.ndarray]
    epochs: list[int]
    duration_ms: float = 500.0
    titles: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)
    _shown: int = field(default=-1, repr=False)

    @classmethod
    def from_maps(cls, maps: Any, labels: np.ndarray, class_names: Sequence[str], *,
                  metrics: Sequence[Mapping[str, Any]] | None = None, test_points: bool = False,
                  duration_ms: float = 500.0, progress: bool = True, renderer: MapFrameRenderer | None = None,
                  ) -> Timelapse:
        """Draw one frame per epoch of ``maps``.

        Parameters
        ----------
        maps : :class:`~epochscope.Maps` (or any object with ``layer``, ``method``, ``epochs``,
            ``coords``, ``bounds`` and optionally ``test_coords``, ``quality``).
        labels, class_names : the probe set's classes (colours and legend).
        metrics : one metrics dict per epoch of ``maps.epochs`` (accuracy figures for the caption).
        test_points : overlay the test set as gold stars on every frame.
        duration_ms : display time per frame in animations (default 500 ms).
        progress : show a progress bar.
        renderer : draw with this renderer (its axes and look) instead of a new one.
        """
        epochs = [int(e) for e in maps.epochs]
        if not epochs:
            raise ValueError("the maps hold no epoch; there is nothing to draw")
        coords = np.asarray(maps.coords)
        if coords.ndim != 3 or coords.shape[0] != len(epochs) or coords.shape[2] != 2:
            raise ValueError(f"maps.coords must be (n_epochs={len(epochs)}, n_points, 2), got {coords.shape}")
        if metrics is not None and len(metrics) != len(epochs):
            raise ValueError(f"metrics must hold one row per epoch ({len(epochs)}), got {len(metrics)}")
        tests = getattr(maps, "test_coords", None) if test_points else None
        quality = getattr(maps, "quality", None) or {}
        trust = quality.get("trustworthiness")
        own = renderer is None
        r = renderer or MapFrameRenderer(maps.bounds, labels, class_names, subtitle=map_subtitle(maps))
        titles = [f"Epoch {e}" for e in epochs]
        captions = [epoch_caption(metrics[i] if metrics is not None else None,
                                  trust[i] if trust is not None else None) for i in range(len(epochs))]
        try:
            frames = [r.draw(coords[i], title=titles[i], caption=captions[i],
                             test_coords=None if tests is None else tests[i])
                      for i in progress_bar(range(len(epochs)), desc="drawing frames", enabled=progress)]
        finally:
            if own:
                r.close()
        keys = {"maps": maps, "labels": labels, "class_names": class_names, "tests": tests}
        return cls(frames=frames, epochs=epochs, duration_ms=float(duration_ms), titles=titles,
                   captions=captions, _keys=keys)

    @classmethod
    def from_run(cls, run: Any, maps: Any, **kwargs: Any) -> Timelapse:
        """:meth:`from_maps` with the labels, class names and metrics read from ``run``; ``maps``
        are the layer's :class:`~epochscope.Maps` (from :func:`epochscope.embed`: a Display never
        computes them)."""
        run = as_run(run)
        check_maps(run, maps, test=bool(kwargs.get("test_points")))
        return cls.from_maps(maps, run.labels, run.class_names, metrics=_metrics_rows(run, maps.epochs), **kwargs)

    def _frame(self) -> np.ndarray:
        return self.frames[self._shown]

    def plot(self, ax: Any = None, *, epoch: int | None = None) -> Timelapse:
        """Show the frame of ``epoch`` (default: the last) on a new off-screen figure of the frame's
        size, or in ``ax``; returns ``self`` (``figure_``, ``ax_``, ``image_``)."""
        if epoch is None:
            self._shown = len(self.frames) - 1
        elif int(epoch) in self.epochs:
            self._shown = self.epochs.index(int(epoch))
        else:
            raise ValueError(f"epoch {epoch} has no frame (epochs {self.epochs[0]}..{self.epochs[-1]})")
        return super().plot(ax)

    def _repr_html_(self) -> str:
        """The animation as an inline GIF (what :meth:`save` writes to a ``.gif``)."""
        import base64

        data = base64.b64encode(gif_bytes(self.frames, duration_ms=self.duration_ms)).decode("ascii")
        h, w = self.shape[:2]
        return f'<img src="data:image/gif;base64,{data}" width="{w}" height="{h}" alt="time-lapse"/>'

    @property
    def shape(self) -> tuple[int, ...]:
        """``(H, W, 3)`` of every frame."""
        return self.frames[0].shape

    def smooth(self, steps: int = 6, *, progress: bool = True) -> Timelapse:
        """A new time-lapse whose points glide between epochs: ``steps`` frames per epoch step,
        positions eased in and out, the same total duration per epoch.

        Only for a time-lapse built by :meth:`from_maps` / :meth:`from_run`.
        """
        if "maps" not in self._keys:
            raise ValueError("smooth() needs the maps: build the time-lapse with Timelapse.from_maps or from_run")
        maps, tests = self._keys["maps"], self._keys["tests"]
        coords = np.asarray(maps.coords, dtype=np.float64)
        weights = ease_steps(steps)
        frames, epochs, titles, captions = [], [], [], []
        r = MapFrameRenderer(maps.bounds, self._keys["labels"], self._keys["class_names"], subtitle=map_subtitle(maps))
        try:
            jobs = [(i, w) for i in range(len(self.epochs) - 1) for w in weights] + [(len(self.epochs) - 1, 0.0)]
            for i, w in progress_bar(jobs, desc="drawing smooth frames", enabled=progress):
                j = min(i + 1, len(self.epochs) - 1)
                xy = coords[i] + (coords[j] - coords[i]) * w
                star = None if tests is None else tests[i] + (tests[j] - tests[i]) * w
                near = i if w < 0.5 else j  # the text switches half way between two epochs
                frames.append(r.draw(xy, title=self.titles[near], caption=self.captions[near], test_coords=star))
                epochs.append(self.epochs[near])
                titles.append(self.titles[near])
                captions.append(self.captions[near])
        finally:
            r.close()
        return replace(self, frames=frames, epochs=epochs, duration_ms=self.duration_ms / steps,
                       titles=titles, captions=captions)

    def save_frames(self, folder: str | Path, *, pattern: str = "epoch_{epoch:03d}.png") -> list[Path]:
        """Write every frame as a PNG into ``folder`` (created if needed); returns the paths.

        PNG encoding (zlib) releases the GIL, so frames are encoded on two threads.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / pattern.format(epoch=e, index=i) for i, e in enumerate(self.epochs)]
        if len(set(paths)) != len(paths):
            raise ValueError(f"pattern {pattern!r} gives the same file name to several frames; include {{index}}")
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(save_png, self.frames, paths))

    def save(self, path: str | Path, *, duration_ms: float | None = None, loop: int = 0) -> Path:
        """Write the frames as an animation; the format comes from the suffix (``.gif`` or ``.mp4``).

        ``duration_ms`` defaults to the time-lapse's own (500 ms per epoch); GIFs loop forever
        unless ``loop`` says how many times to play.
        """
        check_animation_path(path)
        # One palette for all frames: the frames share their colours, and a per-frame palette
        # costs ~4x more and can shift colours from frame to frame.
        return write_animation(self.frames, path, duration_ms=duration_ms or self.duration_ms, loop=loop,
                               palette="shared")


@dataclass
class MapDisplay(FrameDisplay):
    """One epoch's map frame alone: the same pixels as that epoch's ``frames/epoch_NNN.png``
    (and frame of the time-lapse). ``image`` is ``(H, W, 3)`` uint8.

    Example::

        MapDisplay.from_run(run, maps, epoch=3).plot()           # in a notebook: shown inline
    """

    image: np.ndarray
    epoch: int
    title: str = ""
    caption: str = ""

    @classmethod
    def from_run(cls, run: Any, maps: Any, *, epoch: int | None = None, test_points: bool = False) -> MapDisplay:
        """The frame of ``epoch`` (default: the last embedded) of ``maps`` (the layer's
        :class:`~epochscope.Maps`), with the run's classes and metrics; ``test_points`` lays the
        test set on it as gold stars. Raises ``ValueError`` for an epoch the maps do not hold."""
        run = as_run(run)
        check_maps(run, maps, test=test_points)
        i, epoch = _frame_index(maps, epoch)
        trust = (getattr(maps, "quality", None) or {}).get("trustworthiness")
        caption = epoch_caption(_metrics_rows(run, [epoch])[0], trust[i] if trust is not None else None)
        tests = getattr(maps, "test_coords", None) if test_points else None
        title = f"Epoch {epoch}"
        with MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps)) as r:
            image = r.draw(np.asarray(maps.coords[i]), title=title, caption=caption,
                           test_coords=None if tests is None else np.asarray(tests[i]))
        return cls(image=image, epoch=epoch, title=title, caption=caption)

    def _frame(self) -> np.ndarray:
        return self.image
