"""The time-lapse: one map frame per embedded epoch, drawn once and written as PNG, GIF and MP4.

Example::

    maps = epochscope.embed(run, "hidden")
    lapse = Timelapse.from_run(run, maps)                   # draws every frame once
    lapse.save_frames("out/frames")                         # frames/epoch_000.png, ...
    lapse.save("out/timelapse.gif")                         # 500 ms per frame, loops forever
    lapse.save("out/timelapse.mp4")
    lapse.smooth(steps=6).save("out/timelapse_smooth.gif")  # positions eased between epochs
    lapse                                                   # in a notebook: the animation, inline

    # Without holding the frames (what ``epochscope render`` does): each frame is drawn once and
    # goes straight to frames/epoch_NNN.png, timelapse.gif and timelapse.mp4.
    write_timelapse(FrameMaker(maps, run.labels, run.class_names), "out", formats=("gif", "mp4"))

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

from .._errors import stops_on_damage
from .._progress import progress as progress_bar
from . import style
from .animate import check_animation_path, gif_bytes, write_animation
from .figure import FrameDisplay, as_run, check_maps, save_png
from .mapframe import MapFrameRenderer

__all__ = ["FrameMaker", "MapDisplay", "Timelapse", "epoch_caption", "map_subtitle", "ease_steps", "write_timelapse"]

#: What a damaged test predictions file stops in a Display (:func:`epochscope._errors.stops_on_damage`).
DRAWING_STOPS = "the picture is not drawn"


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


def frame_titles(run: Any, epochs: Sequence[int]) -> list[str]:
    """Each frame's title from the run's time axis: ``"Epoch 3"``, or in a run recorded inside
    epochs ``"Epoch 0.26 · step 120"`` (see :attr:`epochscope.Run.timeline`)."""
    timeline = run.timeline
    return [timeline.title(int(e)) for e in epochs]


def _test_wrong(run: Any, epochs: Sequence[int]) -> list[np.ndarray | None]:
    """Per epoch, which test examples were predicted wrong (``None`` for a run without a test set).

    Every finished epoch of a run with a test set holds its test predictions (the writer stores
    ``-1`` where none were given), so a missing or unreadable file is damage: it raises the reader's
    :class:`~epochscope._errors.DamagedFileError`, never a frame without crosses; the caller says
    what it stops (:data:`DRAWING_STOPS`, or render's whole render) with ``epochscope check``."""
    labels = run.test_labels
    if labels is None:
        return [None] * len(epochs)
    out = []
    for e in epochs:
        pred = run.test_predictions(int(e))
        # (its shape was checked against the manifest when read)
        out.append(None if pred is None else np.asarray(pred) != np.asarray(labels))
    return out


class FrameMaker:
    """Draws the frames of a map's time-lapse one at a time: frame ``i`` (an epoch) or an eased
    step between two epochs. What :class:`Timelapse` and :func:`write_timelapse` share.

    Parameters as :meth:`Timelapse.from_maps`; ``test_labels`` colour the test points by their
    true class and ``test_wrong`` (one bool array per epoch, or ``None``) crosses the
    misclassified ones.
    """

    def __init__(self, maps: Any, labels: np.ndarray, class_names: Sequence[str], *,
                 metrics: Sequence[Mapping[str, Any]] | None = None, test_points: bool = False,
                 test_labels: np.ndarray | None = None, test_wrong: Sequence[np.ndarray | None] | None = None,
                 renderer: MapFrameRenderer | None = None, titles: Sequence[str] | None = None,
                 by_step: bool = False) -> None:
        self.epochs = [int(e) for e in maps.epochs]
        self.by_step = by_step  # records numbered by step (a run recorded inside epochs): frame files say so
        if not self.epochs:
            raise ValueError("the maps hold no epoch; there is nothing to draw")
        coords = maps.coords
        shape = tuple(np.shape(coords))
        if len(shape) != 3 or shape[0] != len(self.epochs) or shape[2] != 2:
            raise ValueError(f"maps.coords must be (n_epochs={len(self.epochs)}, n_points, 2), got {shape}")
        if metrics is not None and len(metrics) != len(self.epochs):
            raise ValueError(f"metrics must hold one row per epoch ({len(self.epochs)}), got {len(metrics)}")
        self.maps, self.coords = maps, coords
        self.tests = getattr(maps, "test_coords", None) if test_points else None
        self.test_labels = None if self.tests is None or test_labels is None else np.asarray(test_labels)
        self.test_wrong = test_wrong if self.tests is not None else None
        quality = getattr(maps, "quality", None) or {}
        trust = quality.get("trustworthiness")
        if titles is not None and len(titles) != len(self.epochs):
            raise ValueError(f"titles must hold one title per epoch ({len(self.epochs)}), got {len(titles)}")
        # A run recorded inside epochs names each frame by its fractional epoch and step (frame_titles).
        self.titles = list(titles) if titles is not None else [f"Epoch {e}" for e in self.epochs]
        self.captions = [epoch_caption(metrics[i] if metrics is not None else None,
                                       trust[i] if trust is not None else None) for i in range(len(self.epochs))]
        self._own = renderer is None
        self.renderer = renderer or MapFrameRenderer(maps.bounds, labels, class_names, subtitle=map_subtitle(maps),
                                                     test_legend=self.tests is not None)

    def __len__(self) -> int:
        return len(self.epochs)

    def frame_file(self, i: int) -> str:
        """The PNG name of frame ``i``: ``epoch_NNN.png``, or ``step_NNNNNN.png`` when records count steps."""
        return f"step_{self.epochs[i]:06d}.png" if self.by_step else f"epoch_{self.epochs[i]:03d}.png"

    def _tests_at(self, i: int) -> dict[str, Any]:
        if self.tests is None:
            return {}
        wrong = self.test_wrong[i] if self.test_wrong is not None else None
        return {"test_coords": np.asarray(self.tests[i], dtype=np.float64), "test_labels": self.test_labels,
                "test_wrong": wrong}

    def frame(self, i: int) -> np.ndarray:
        """The frame of the ``i``-th epoch, ``(H, W, 3)`` uint8."""
        return self.renderer.draw(np.asarray(self.coords[i], dtype=np.float64), title=self.titles[i],
                                  caption=self.captions[i], **self._tests_at(i))

    def steps(self, steps: int) -> list[tuple[int, float]]:
        """``(i, w)`` of every frame of a smooth animation: ``steps`` eased frames from each epoch
        toward the next, then the last epoch."""
        weights = ease_steps(steps)
        return [(i, float(w)) for i in range(len(self.epochs) - 1) for w in weights] + [(len(self.epochs) - 1, 0.0)]

    def between(self, i: int, w: float) -> tuple[np.ndarray, int]:
        """The frame a share ``w`` (eased) of the way from epoch ``i`` to the next, and the epoch
        index its text shows (the text switches half way)."""
        j = min(i + 1, len(self.epochs) - 1)
        a, b = np.asarray(self.coords[i], dtype=np.float64), np.asarray(self.coords[j], dtype=np.float64)
        near = i if w < 0.5 else j
        tests = self._tests_at(near)
        if tests:
            ta, tb = np.asarray(self.tests[i], dtype=np.float64), np.asarray(self.tests[j], dtype=np.float64)
            tests["test_coords"] = ta + (tb - ta) * w
        frame = self.renderer.draw(a + (b - a) * w, title=self.titles[near], caption=self.captions[near], **tests)
        return frame, near

    def close(self) -> None:
        if self._own:
            self.renderer.close()


def write_timelapse(maker: FrameMaker, out_dir: str | Path, *, formats: Sequence[str] = ("gif",),
                    frames_folder: str | None = "frames", name: str = "timelapse", smooth_steps: int | None = None,
                    duration_ms: float = 500.0, progress: bool = True) -> list[Path]:
    """Draw every frame once and hand it at once to every output: ``frames/epoch_NNN.png`` (when
    ``frames_folder``; ``frames/step_NNNNNN.png`` for a run recorded inside epochs), ``<name>.gif``
    and ``<name>.mp4``. Memory holds one frame (and the writers'
    own state) whatever the number of epochs; frames are never collected in a list.

    With ``smooth_steps``, the frames glide between epochs (``smooth_steps`` per epoch step, the
    same duration per epoch) and no PNG files are written. Returns the paths written. If a write
    fails, the animations begun are removed (PNG frames already written stay, each complete).
    """
    from .._output import check_output_dir
    from .animate import AnimationWriter, SharedPalette, palette_sample

    out = check_output_dir(out_dir)
    if smooth_steps is None:
        jobs = [(i, 0.0) for i in range(len(maker))]
        per_frame = duration_ms
    else:
        jobs = maker.steps(smooth_steps)
        per_frame = duration_ms / smooth_steps

    def draw(job: tuple[int, float]) -> np.ndarray:
        return maker.frame(job[0]) if job[1] == 0.0 else maker.between(*job)[0]

    writers = []
    try:
        if "gif" in formats:
            # One palette for all frames, fitted to a few frames drawn first (they are drawn again
            # in turn below rather than kept: memory stays one frame).
            palette = SharedPalette(draw(jobs[k]) for k in palette_sample(len(jobs), 8))
            writers.append(AnimationWriter(out / f"{name}.gif", duration_ms=per_frame, palette=palette))
        if "mp4" in formats:
            writers.append(AnimationWriter(out / f"{name}.mp4", duration_ms=per_frame))
        pngs: list[Path] = []
        folder = None
        if frames_folder and smooth_steps is None:
            folder = check_output_dir(out / frames_folder)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            desc = "drawing smooth frames" if smooth_steps else "drawing frames"
            for job in progress_bar(jobs, desc=desc, enabled=progress):
                frame = draw(job)
                if folder is not None:
                    # PNG encoding (zlib) releases the GIL: the previous frame is encoded while this
                    # one goes to the animations; at most two frames are alive.
                    if pending is not None:
                        pngs.append(pending.result())
                    pending = pool.submit(save_png, frame, folder / maker.frame_file(job[0]))
                for w in writers:
                    w.append(frame)
            if pending is not None:
                pngs.append(pending.result())
        paths = [w.close() for w in writers]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return pngs + paths


@dataclass
class Timelapse(FrameDisplay):
    """Frames of a map, one per epoch, ready to be written as PNG, GIF or MP4.

    Build it with :meth:`from_maps` or :meth:`from_run`; each frame is drawn once and
    reused for every output format. In a notebook it shows itself as the animated GIF
    (``_repr_html_``); :meth:`plot` shows one frame (``_repr_png_``: the last). It holds every
    frame in memory (about 1.4 MB each): :func:`write_timelapse`, which ``epochscope render``
    uses, streams them to the files instead.

    Attributes
    ----------
    frames : list of ``(H, W, 3)`` uint8 arrays, all the same size.
    epochs : the epoch each frame shows (for the file names).
    duration_ms : display time of each frame in animations.
    titles, captions : the text drawn on each frame.
    """

    frames: list[np.ndarray]
    epochs: list[int]
    duration_ms: float = style.FRAME_MS
    titles: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)
    _shown: int = field(default=-1, repr=False)

    @classmethod
    def from_maps(cls, maps: Any, labels: np.ndarray, class_names: Sequence[str], *,
                  metrics: Sequence[Mapping[str, Any]] | None = None, test_points: bool = False,
                  test_labels: np.ndarray | None = None, test_wrong: Sequence[np.ndarray | None] | None = None,
                  duration_ms: float = style.FRAME_MS, progress: bool = True,
                  renderer: MapFrameRenderer | None = None, titles: Sequence[str] | None = None) -> Timelapse:
        """Draw one frame per epoch of ``maps``.

        Parameters
        ----------
        maps : :class:`~epochscope.Maps` (or any object with ``layer``, ``method``, ``epochs``,
            ``coords``, ``bounds`` and optionally ``test_coords``, ``quality``).
        labels, class_names : the probe set's classes (colours and legend).
        metrics : one metrics dict per epoch of ``maps.epochs`` (accuracy figures for the caption).
        test_points : lay the test set on every frame (probe points then drawn pale).
        test_labels : the test set's true classes (the test points' colours; gold without them).
        test_wrong : per epoch, which test examples were misclassified (crossed), or ``None``.
        duration_ms : display time per frame in animations (default 500 ms).
        progress : show progress.
        renderer : draw with this renderer (its axes and look) instead of a new one.
        titles : one title per epoch (default ``"Epoch N"``; :meth:`from_run` names a record inside
            an epoch by its fractional epoch and step, see :func:`frame_titles`).
        """
        maker = FrameMaker(maps, labels, class_names, metrics=metrics, test_points=test_points,
                           test_labels=test_labels, test_wrong=test_wrong, renderer=renderer, titles=titles)
        try:
            frames = [maker.frame(i) for i in progress_bar(range(len(maker)), desc="drawing frames", enabled=progress)]
        finally:
            maker.close()
        keys = {"maps": maps, "labels": labels, "class_names": class_names, "test_points": test_points,
                "test_labels": test_labels, "test_wrong": test_wrong, "metrics": metrics, "titles": titles}
        return cls(frames=frames, epochs=maker.epochs, duration_ms=float(duration_ms), titles=maker.titles,
                   captions=maker.captions, _keys=keys)

    @classmethod
    def from_run(cls, run: Any, maps: Any, **kwargs: Any) -> Timelapse:
        """:meth:`from_maps` with the labels, class names, metrics and (with ``test_points=True``)
        the test set's classes and mistakes read from ``run``; ``maps`` are the layer's
        :class:`~epochscope.Maps` (from :func:`epochscope.embed`: a Display never computes them)."""
        run = as_run(run)
        check_maps(run, maps, test=bool(kwargs.get("test_points")))
        if kwargs.get("test_points"):
            kwargs.setdefault("test_labels", run.test_labels)
            with stops_on_damage(run, DRAWING_STOPS):
                kwargs.setdefault("test_wrong", _test_wrong(run, maps.epochs))
        kwargs.setdefault("titles", frame_titles(run, maps.epochs))
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
        k = self._keys
        maker = FrameMaker(k["maps"], k["labels"], k["class_names"], metrics=k["metrics"], test_points=k["test_points"],
                           test_labels=k["test_labels"], test_wrong=k["test_wrong"], titles=k.get("titles"))
        frames, epochs, titles, captions = [], [], [], []
        try:
            for i, w in progress_bar(maker.steps(steps), desc="drawing smooth frames", enabled=progress):
                frame, near = maker.between(i, w)
                frames.append(frame)
                epochs.append(self.epochs[near])
                titles.append(self.titles[near])
                captions.append(self.captions[near])
        finally:
            maker.close()
        return replace(self, frames=frames, epochs=epochs, duration_ms=self.duration_ms / steps,
                       titles=titles, captions=captions)

    def save_frames(self, folder: str | Path, *, pattern: str = "epoch_{epoch:03d}.png") -> list[Path]:
        """Write every frame as a PNG into ``folder`` (created if needed); returns the paths.

        PNG encoding (zlib) releases the GIL, so frames are encoded on two threads.
        """
        from .._output import check_output_dir

        folder = check_output_dir(folder)
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
        test set on it (class colours, misclassified crossed). Raises ``ValueError`` for an epoch the maps do not hold."""
        run = as_run(run)
        check_maps(run, maps, test=test_points)
        i, epoch = _frame_index(maps, epoch)
        trust = (getattr(maps, "quality", None) or {}).get("trustworthiness")
        caption = epoch_caption(_metrics_rows(run, [epoch])[0], trust[i] if trust is not None else None)
        tests = getattr(maps, "test_coords", None) if test_points else None
        title = frame_titles(run, [epoch])[0]
        extra = {}
        if tests is not None:
            with stops_on_damage(run, DRAWING_STOPS):
                extra = {"test_coords": np.asarray(tests[i]), "test_labels": run.test_labels,
                         "test_wrong": _test_wrong(run, [epoch])[0]}
        with MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps),
                              test_legend=tests is not None) as r:
            image = r.draw(np.asarray(maps.coords[i]), title=title, caption=caption, **extra)
        return cls(image=image, epoch=epoch, title=title, caption=caption)

    def _frame(self) -> np.ndarray:
        return self.image
