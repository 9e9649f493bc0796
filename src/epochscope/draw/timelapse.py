"""The time-lapse: one map frame per embedded epoch, drawn once and written as PNG, GIF and MP4.

Example::

    maps = epochscope.embed(run, "hidden")
    lapse = Timelapse.from_run(run, maps)                   # draws every frame once
    lapse.save_frames("out/frames")                         # frames/epoch_000.png, ...
    lapse.save("out/timelapse.gif")                         # 500 ms per frame, loops forever
    lapse.save("out/timelapse.mp4")
    lapse.smooth(steps=6).save("out/timelapse_smooth.gif")  # positions eased between epochs
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
from .animate import check_animation_path, write_animation
from .mapframe import MapFrameRenderer

__all__ = ["Timelapse", "epoch_caption", "map_subtitle", "ease_steps", "save_png"]

# zlib level 3: files within ~10 % of the default level's size at about half its encoding time.
PNG_COMPRESS_LEVEL = 3


def save_png(frame: np.ndarray, path: str | Path) -> Path:
    """Write one ``(H, W, 3)`` uint8 frame as PNG (via a temporary name, so no half-written file is left)."""
    from PIL import Image

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.png")
    Image.fromarray(frame).save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    tmp.replace(path)
    return path


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


@dataclass
class Timelapse:
    """Frames of a map, one per epoch, ready to be written as PNG, GIF or MP4.

    Build it with :meth:`from_maps` or :meth:`from_run`; each frame is drawn once and
    reused for every output format.

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
        """:meth:`from_maps` with the labels, class names and metrics read from ``run``."""
        rows = {int(m.get("epoch", -1)): m for m in run.metrics}
        metrics = [rows.get(int(e), {}) for e in maps.epochs]
        return cls.from_maps(maps, run.labels, run.class_names, metrics=metrics, **kwargs)

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
