"""Animations: frames joined into a GIF or MP4, and the 8-bit palettes GIFs need. The one writer
every animation uses (time-lapse, network, a notebook's inline GIF).

Frames are ``(H, W, 3)`` uint8 arrays (or Pillow RGB images), so a picture drawn once can go
to PNG, GIF and MP4 without being drawn again. A GIF holds 256 colours per frame; three ways
to choose them (``palette=`` of :func:`write_animation`):

- ``"adaptive"``: a median-cut palette per frame (Pillow's default; 60-90 ms a 1200 x 500
  frame). Best when frames share little.
- ``"shared"`` (:class:`SharedPalette`): one palette for all frames, its most frequent colours
  kept exact (white background, class colours, text) and median cut for the rest (anti-aliased
  edges). About 4x faster than a palette per frame on map frames, and colours cannot flicker.
- ``"octree"`` (:class:`OctreePalette`): one palette fitted by Pillow's fast octree to a few
  sampled frames; mapping a frame onto it costs a few milliseconds. For frames that share their
  whole background (the network animation), where ``"shared"`` would cost ~15 ms a frame.

Frames are converted and written one by one as they come (:class:`AnimationWriter`): a GIF is
streamed frame by frame (only the rectangle that changed since the previous frame), so memory
holds one frame whatever the number of frames.

Example::

    write_animation(frames, "timelapse.gif", duration_ms=500, palette="shared")
    write_animation(frames, "timelapse.mp4", duration_ms=500)
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._optional import require
from .._output import check_output_file, output_error, temp_path

__all__ = ["ANIMATION_SUFFIXES", "AnimationWriter", "OctreePalette", "PALETTES", "SharedPalette", "check_animation_path",
           "gif_bytes", "palette_sample", "write_animation"]

log = logging.getLogger("epochscope")
ANIMATION_SUFFIXES = (".gif", ".mp4")
PALETTES = ("adaptive", "shared", "octree")


def check_animation_path(path: str | Path) -> Path:
    """Validate an output file name before any frame is drawn (the format comes from the suffix).

    Raises ``ValueError`` for a suffix other than ``.gif``/``.mp4`` and
    :class:`~epochscope.MissingDependencyError` for MP4 without imageio-ffmpeg.
    """
    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ValueError(f"animation file {path.name!r}: the suffix must be one of {', '.join(ANIMATION_SUFFIXES)}")
    if path.suffix.lower() == ".mp4":
        require("imageio_ffmpeg", extra="video", purpose="MP4 output")
    return path


def palette_sample(n_frames: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` evenly spaced frame indices out of ``n_frames``, first and last included.

    >>> palette_sample(100, 5)
    [0, 25, 50, 74, 99]
    """
    if n_frames < 1:
        return []
    return np.unique(np.linspace(0, n_frames - 1, min(max_frames, n_frames)).round().astype(int)).tolist()


def _rgb(frame: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 from an array or a Pillow image."""
    return np.ascontiguousarray(np.asarray(frame)[..., :3])


def _even(frame: np.ndarray) -> np.ndarray:
    # H.264 with yuv420p needs even width and height.
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def _pack(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours as one int32 each (0xRRGGBB)."""
    packed = rgb[..., 0].astype(np.int32) << 16
    packed |= rgb[..., 1].astype(np.int32) << 8
    packed |= rgb[..., 2]
    return packed


class SharedPalette:
    """One 8-bit palette for all frames of an animation, and the mapping of frames onto it.

    Built from pixels sampled in up to ``max_frames`` evenly spaced frames of a sequence (or in
    every frame an iterator gives, e.g. frames drawn for the purpose): the ``exact``
    most frequent colours are kept as they are (background, class colours, text), median
    cut fills the rest (anti-aliased edges). Pillow maps a frame to a given palette with
    reduced colour precision, so pixels of the exact colours are then set to their exact
    entries: a white background stays pure white in every frame.

    Raises ``ValueError`` when ``exact`` is outside 1..254.
    """

    def __init__(self, frames: Sequence[np.ndarray] | Iterable[np.ndarray], *, max_frames: int = 8,
                 exact: int = 64) -> None:
        if not 0 < exact < 255:
            raise ValueError(f"exact must lie in 1..254, got {exact}")
        from PIL import Image

        if isinstance(frames, Sequence):
            frames = [frames[i] for i in palette_sample(len(frames), max_frames)]
        # A quarter of each frame's pixels is enough, and an iterator of frames (drawn on demand)
        # is never held whole: memory keeps the quarters only.
        parts = [np.ascontiguousarray(_rgb(f)[::2, ::2]) for f in frames]
        if not parts:
            raise ValueError("no frames to fit a palette to")
        sample = np.concatenate(parts, axis=0)
        del parts
        values, counts = np.unique(_pack(sample), return_counts=True)
        common = values[np.argsort(counts)[::-1][:exact]]
        colours = [((v >> 16) & 255, (v >> 8) & 255, v & 255) for v in common.tolist()]
        if len(values) > len(colours):
            rest = 256 - len(colours)
            cut = Image.fromarray(np.ascontiguousarray(sample)).quantize(rest, method=Image.Quantize.MEDIANCUT,
                                                                          dither=Image.Dither.NONE)
            seen = set(colours)
            for c in np.array(cut.getpalette()[: 3 * rest]).reshape(-1, 3).tolist():
                if tuple(c) not in seen and len(colours) < 256:
                    colours.append(tuple(c))
                    seen.add(tuple(c))
        self.colours = colours
        flat = [v for c in colours for v in c] + [0, 0, 0] * (256 - len(colours))
        self.image = Image.new("P", (1, 1))
        self.image.putpalette(flat)
        # Colour (0xRRGGBB) -> palette index for the exact colours, 255 for the others: a 16 MB
        # table that maps a frame with one gather. The exact colours are the first entries (< 255).
        self._exact = np.full(1 << 24, 255, dtype=np.uint8)
        self._exact[common] = np.arange(len(common), dtype=np.uint8)

    def apply(self, frame: Any):
        """``frame`` ``(H, W, 3)`` uint8 (or a Pillow RGB image) as a Pillow "P" image on this palette."""
        from PIL import Image

        frame = _rgb(frame)
        index = np.array(Image.fromarray(frame).quantize(palette=self.image, dither=Image.Dither.NONE))
        exact = self._exact[_pack(frame)]
        hit = exact != 255
        index[hit] = exact[hit]
        out = Image.frombytes("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes())
        out.putpalette(self.image.getpalette())
        return out


class OctreePalette:
    """One 255-colour palette fitted by Pillow's octree to up to ``max_frames`` evenly spaced
    frames of ``frames``; :meth:`apply` maps any frame onto it (a few milliseconds a frame).

    Pass only the frames to fit on (e.g. five rendered frames) to avoid drawing the others twice.
    """

    def __init__(self, frames: Sequence[Any], *, max_frames: int = 5) -> None:
        from PIL import Image

        picks = palette_sample(len(frames), max_frames)
        if not picks:
            raise ValueError("no frames to fit a palette to")
        sample = np.concatenate([_rgb(frames[i]) for i in picks], axis=0)
        self.image = Image.fromarray(sample).quantize(255, method=Image.Quantize.FASTOCTREE)

    def apply(self, frame: Any):
        """``frame`` (``(H, W, 3)`` uint8 or a Pillow RGB image) as a Pillow "P" image on this palette."""
        from PIL import Image

        image = frame if isinstance(frame, Image.Image) else Image.fromarray(_rgb(frame))
        return image.quantize(palette=self.image, dither=Image.Dither.NONE)


def _checked(frames: Iterable[Any]) -> Iterator[Any]:
    """The frames, refusing none at all and frames of different sizes (checked as they come)."""
    size = None
    for frame in frames:
        shape = _size(frame)
        if size is None:
            size = shape
        elif shape != size:
            raise ValueError(f"all frames must have the same size: {size[1]} x {size[0]}, then {shape[1]} x {shape[0]}")
        yield frame
    if size is None:
        raise ValueError("no frames to write")


def _size(frame: Any) -> tuple[int, int]:
    """``(height, width)`` of an array or a Pillow image."""
    return (frame.size[1], frame.size[0]) if hasattr(frame, "getpixel") else tuple(np.shape(frame)[:2])


def _fitted(frames: Iterable[Any], palette: str | SharedPalette | OctreePalette) -> tuple[Iterable[Any], Any]:
    """``(frames, palette)`` with a palette object fitted to the frames when ``palette`` names a
    shared one (the frames are then held as a list: pass a fitted palette to stream them)."""
    if isinstance(palette, str):
        if palette not in PALETTES:
            raise ValueError(f"palette must be one of {', '.join(PALETTES)} or a palette object, got {palette!r}")
        if palette != "adaptive":
            frames = list(_checked(frames))
            palette = SharedPalette(frames) if palette == "shared" else OctreePalette(frames)
    return frames, palette


class _GifStream:
    """A GIF written frame by frame: the header with the first frame's (global) palette, then per
    frame only the rectangle that changed since the previous one (disposal "keep", as Pillow's
    own writer does), so memory holds one frame and the previous frame's palette indices,
    whatever the number of frames. Pillow's ``save_all`` holds every frame until the end.

    Built on Pillow's documented ``GifImagePlugin.getheader``/``getdata``.
    """

    def __init__(self, fp: BinaryIO, palette: str | SharedPalette | OctreePalette, *, duration_ms: float,
                 loop: int) -> None:
        self.fp, self.palette, self.duration, self.loop = fp, palette, int(round(duration_ms)), loop
        self.previous: np.ndarray | None = None

    def _image(self, frame: Any):
        from PIL import Image

        if isinstance(self.palette, str):  # "adaptive": a palette of its own per frame
            image = frame if isinstance(frame, Image.Image) else Image.fromarray(_rgb(frame))
            return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
        return self.palette.apply(frame)

    def append(self, frame: Any) -> None:
        from PIL import GifImagePlugin

        image = self._image(frame)
        local = isinstance(self.palette, str)
        index = np.asarray(image)
        if self.previous is None:
            header, _ = GifImagePlugin.getheader(image, info={"loop": self.loop, "duration": self.duration})
            self.fp.write(b"".join(header))
            box = (0, 0, image.size[0], image.size[1])
        else:
            if local:
                box = (0, 0, image.size[0], image.size[1])
            else:
                diff = index != self.previous
                rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
                if not len(rows):
                    box = (0, 0, 1, 1)  # the same picture: a one-pixel frame that keeps the time
                else:
                    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        part = image if box == (0, 0, image.size[0], image.size[1]) else image.crop(box)
        if not local:
            part.putpalette(image.getpalette())
        for chunk in GifImagePlugin.getdata(part, offset=box[:2], duration=self.duration, disposal=1,
                                            include_color_table=local):
            self.fp.write(chunk)
        self.previous = index

    def close(self) -> None:
        if self.previous is None:
            raise ValueError("no frames to write")
        self.fp.write(b";")  # trailer


class AnimationWriter:
    """An animation written frame by frame, so memory holds one frame whatever their number.

    ``append`` frames (``(H, W, 3)`` uint8 arrays or Pillow RGB images of one size); ``close``
    finishes the file and renames it into place; ``abort`` (or an exception inside ``with``)
    removes the unfinished file. GIF: one palette (``palette`` a fitted :class:`SharedPalette`
    or :class:`OctreePalette`, or ``"adaptive"`` for one per frame); MP4: H.264 through
    imageio-ffmpeg. A disk that fills up or a folder that turns read-only gives an
    :class:`~epochscope.OutputError` naming the file.

    Example::

        palette = SharedPalette([draw(i) for i in palette_sample(n, 8)])
        with AnimationWriter("timelapse.gif", duration_ms=500, palette=palette) as gif:
            for i in range(n):
                gif.append(draw(i))
    """

    def __init__(self, path: str | Path, *, duration_ms: float = 500, loop: int = 0,
                 palette: str | SharedPalette | OctreePalette = "adaptive") -> None:
        self.path = check_animation_path(path)
        if self.path.suffix.lower() == ".gif" and isinstance(palette, str) and palette != "adaptive":
            raise ValueError("a streamed GIF needs a fitted palette (SharedPalette or OctreePalette) or 'adaptive'; "
                             "use write_animation to fit one to a list of frames")
        self.duration_ms, self.frames = float(duration_ms), 0
        self._size: tuple[int, int] | None = None
        self._tmp = temp_path(self.path)
        self._gif = self.path.suffix.lower() == ".gif"
        self._fp: BinaryIO | None = None
        self._mp4: Any = None
        self._palette = palette
        self._loop = loop
        self._done = False

    def append(self, frame: Any) -> None:
        """Add one frame (converted and written at once)."""
        size = _size(frame)
        if self._size is None:
            self._size = size
        elif size != self._size:
            self.abort()
            raise ValueError(f"all frames must have the same size: {self._size[1]} x {self._size[0]}, "
                             f"then {size[1]} x {size[0]}")
        try:
            if self._gif:
                if self._fp is None:
                    self._fp = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
                    self._stream = _GifStream(self._fp, self._palette, duration_ms=self.duration_ms, loop=self._loop)
                self._stream.append(frame)
            else:
                rgb = np.ascontiguousarray(_even(_rgb(frame)))
                if self._mp4 is None:
                    self._mp4 = _mp4_writer(self._tmp, (rgb.shape[1], rgb.shape[0]), self.duration_ms)
                self._mp4.send(rgb)
        except OSError as err:
            self.abort()
            raise output_error(self.path, err) from err
        except BaseException:
            self.abort()
            raise
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and rename it into place; returns its path. ``ValueError`` without frames."""
        if self._done:
            return self.path
        if not self.frames:
            self.abort()
            raise ValueError("no frames to write")
        try:
            if self._gif:
                self._stream.close()
                self._fp.close()
            else:
                self._mp4.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self.abort()
            raise output_error(self.path, err) from err
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        """Stop and remove the unfinished file (safe to call twice)."""
        if self._done:
            return
        self._done = True
        try:
            if self._fp is not None:
                self._fp.close()
            if self._mp4 is not None:
                self._mp4.close()
        except Exception:  # noqa: BLE001 - the file is removed below anyway
            pass
        try:
            self._tmp.unlink(missing_ok=True)
        except OSError:
            pass

    def __enter__(self) -> AnimationWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_animation(frames: Iterable[Any], path: str | Path, *, duration_ms: float = 500, loop: int = 0,
                    palette: str | SharedPalette | OctreePalette = "adaptive") -> Path:
    """Write frames to ``path`` (.gif or .mp4) with ``duration_ms`` per frame; returns the path.

    ``frames`` are ``(H, W, 3)`` uint8 arrays or Pillow RGB images of one size, as a sequence or
    an iterator (converted and written as they come: with a fitted palette object or
    ``"adaptive"``, memory holds one frame). GIF: looping forever (``loop=0``), colours chosen by
    ``palette`` (see the module doc; ``"shared"``/``"octree"`` fit a palette to the frames first,
    which holds them as a list). MP4: H.264 through imageio-ffmpeg (which ships its own ffmpeg
    binary). The file is written under a temporary name unique to the process and renamed, so a
    killed render never leaves a half-written file under the final name (see
    :class:`AnimationWriter`).

    Raises ``ValueError`` for another suffix, an unknown palette, no frames or frames of
    different sizes; :class:`~epochscope.MissingDependencyError` for MP4 without imageio-ffmpeg;
    :class:`~epochscope.OutputError` when the file cannot be written.
    """
    path = check_animation_path(path)
    if isinstance(palette, str) and palette not in PALETTES:
        raise ValueError(f"palette must be one of {', '.join(PALETTES)} or a palette object, got {palette!r}")
    check_output_file(path)
    if path.suffix.lower() == ".gif":
        frames, palette = _fitted(frames, palette)
    with AnimationWriter(path, duration_ms=duration_ms, loop=loop, palette=palette) as writer:
        for frame in frames:
            writer.append(frame)
    return path


def gif_bytes(frames: Iterable[Any], *, duration_ms: float = 500, loop: int = 0,
              palette: str | SharedPalette | OctreePalette = "shared") -> bytes:
    """The GIF :func:`write_animation` would write, as bytes (e.g. for a notebook's inline animation)."""
    frames, palette = _fitted(frames, palette)
    buf = io.BytesIO()
    stream = _GifStream(buf, palette, duration_ms=duration_ms, loop=loop)
    for frame in _checked(frames):
        stream.append(frame)
    stream.close()
    return buf.getvalue()


def _mp4_writer(path: Path, size: tuple[int, int], duration_ms: float):
    # Straight to imageio-ffmpeg's frame writer (it ships its own ffmpeg binary): no need for
    # imageio's plugin layer on top of it.
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), size, pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                                         fps=1000.0 / duration_ms, codec="libx264", macro_block_size=1,
                                         ffmpeg_log_level="error", output_params=["-f", "mp4"])
    writer.send(None)  # start the ffmpeg process
    return writer
