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

Frames given as an iterator are converted to 8 bits one by one as they come, so memory holds
one byte per pixel per frame, not three.

Example::

    write_animation(frames, "timelapse.gif", duration_ms=500, palette="shared")
    write_animation(frames, "timelapse.mp4", duration_ms=500)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._optional import require

__all__ = ["ANIMATION_SUFFIXES", "OctreePalette", "PALETTES", "SharedPalette", "check_animation_path", "gif_bytes",
           "palette_sample", "write_animation"]

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

    Built from pixels sampled in up to ``max_frames`` evenly spaced frames: the ``exact``
    most frequent colours are kept as they are (background, class colours, text), median
    cut fills the rest (anti-aliased edges). Pillow maps a frame to a given palette with
    reduced colour precision, so pixels of the exact colours are then set to their exact
    entries: a white background stays pure white in every frame.

    Raises ``ValueError`` when ``exact`` is outside 1..254.
    """

    def __init__(self, frames: Sequence[np.ndarray], *, max_frames: int = 8, exact: int = 64) -> None:
        if not 0 < exact < 255:
            raise ValueError(f"exact must lie in 1..254, got {exact}")
        from PIL import Image

        picks = palette_sample(len(frames), max_frames)
        sample = np.concatenate([_rgb(frames[i])[::2, ::2] for i in picks], axis=0)
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
        shape = (frame.size[1], frame.size[0]) if hasattr(frame, "getpixel") else tuple(np.shape(frame)[:2])
        if size is None:
            size = shape
        elif shape != size:
            raise ValueError(f"all frames must have the same size: {size[1]} x {size[0]}, then {shape[1]} x {shape[0]}")
        yield frame
    if size is None:
        raise ValueError("no frames to write")


def _gif_images(frames: Iterable[Any], palette: str | SharedPalette | OctreePalette) -> Iterator[Any]:
    """Pillow "P" images, one per frame, converted as the frames come."""
    from PIL import Image

    if isinstance(palette, str):
        if palette not in PALETTES:
            raise ValueError(f"palette must be one of {', '.join(PALETTES)} or a palette object, got {palette!r}")
        if palette != "adaptive":
            frames = list(frames)  # the palette is fitted on sampled frames first
            if not frames:
                raise ValueError("no frames to write")
            palette = SharedPalette(frames) if palette == "shared" else OctreePalette(frames)
    for frame in frames:
        if isinstance(palette, str):
            image = frame if isinstance(frame, Image.Image) else Image.fromarray(_rgb(frame))
            yield image.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
        else:
            yield palette.apply(frame)


def _save_gif(images: Iterable[Any], target: str | Path | BinaryIO, *, duration_ms: float, loop: int) -> None:
    images = iter(images)
    first = next(images)
    first.save(target, format="GIF", save_all=True, append_images=images, duration=int(round(duration_ms)),
               loop=loop, optimize=False, disposal=1)


def write_animation(frames: Iterable[Any], path: str | Path, *, duration_ms: float = 500, loop: int = 0,
                    palette: str | SharedPalette | OctreePalette = "adaptive") -> Path:
    """Write frames to ``path`` (.gif or .mp4) with ``duration_ms`` per frame; returns the path.

    ``frames`` are ``(H, W, 3)`` uint8 arrays or Pillow RGB images of one size, as a sequence or
    an iterator (converted as they come). GIF: Pillow, looping forever (``loop=0``), colours
    chosen by ``palette`` (see the module doc; a fitted :class:`SharedPalette` or
    :class:`OctreePalette` is used as it is). MP4: H.264 through imageio-ffmpeg (which ships its
    own ffmpeg binary). The file is written under a temporary name and renamed, so a killed
    render never leaves a half-written file under the final name.

    Raises ``ValueError`` for another suffix, an unknown palette, no frames or frames of
    different sizes; :class:`~epochscope.MissingDependencyError` for MP4 without imageio-ffmpeg.
    """
    path = check_animation_path(path)
    if isinstance(palette, str) and palette not in PALETTES:
        raise ValueError(f"palette must be one of {', '.join(PALETTES)} or a palette object, got {palette!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        if path.suffix.lower() == ".gif":
            _save_gif(_gif_images(_checked(frames), palette), tmp, duration_ms=duration_ms, loop=loop)
        else:
            _write_mp4(_checked(frames), tmp, duration_ms=duration_ms)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def gif_bytes(frames: Iterable[Any], *, duration_ms: float = 500, loop: int = 0,
              palette: str | SharedPalette | OctreePalette = "shared") -> bytes:
    """The GIF :func:`write_animation` would write, as bytes (e.g. for a notebook's inline animation)."""
    buf = io.BytesIO()
    _save_gif(_gif_images(_checked(frames), palette), buf, duration_ms=duration_ms, loop=loop)
    return buf.getvalue()


def _write_mp4(frames: Iterable[Any], path: Path, *, duration_ms: float) -> None:
    # Straight to imageio-ffmpeg's frame writer (it ships its own ffmpeg binary): no need for
    # imageio's plugin layer on top of it.
    import imageio_ffmpeg

    writer = None
    try:
        for frame in frames:
            rgb = np.ascontiguousarray(_even(_rgb(frame)))
            if writer is None:
                size = (rgb.shape[1], rgb.shape[0])
                writer = imageio_ffmpeg.write_frames(str(path), size, pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                                                     fps=1000.0 / duration_ms, codec="libx264", macro_block_size=1,
                                                     ffmpeg_log_level="error", output_params=["-f", "mp4"])
                writer.send(None)  # start the ffmpeg process
            writer.send(rgb)
    finally:
        if writer is not None:
            writer.close()
