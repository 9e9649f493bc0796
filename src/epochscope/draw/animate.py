"""Join frames into a GIF or MP4, and turn a matplotlib figure into a frame.

Frames are ``(H, W, 3)`` uint8 arrays, so a picture drawn once can go to PNG, GIF and
MP4 without being drawn again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .._optional import require

__all__ = ["ANIMATION_SUFFIXES", "check_animation_path", "figure_to_array", "SharedPalette", "write_animation"]

log = logging.getLogger("epochscope")
ANIMATION_SUFFIXES = (".gif", ".mp4")


def check_animation_path(path: str | Path) -> Path:
    """Validate an output file name before any frame is drawn (the format comes from the suffix)."""
    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ValueError(f"animation file {path.name!r}: the suffix must be one of {', '.join(ANIMATION_SUFFIXES)}")
    if path.suffix.lower() == ".mp4":
        require("imageio_ffmpeg", extra="video", purpose="MP4 output")
    return path


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure (Agg) and return its pixels as ``(H, W, 3)`` uint8."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


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
    """

    def __init__(self, frames: Sequence[np.ndarray], *, max_frames: int = 8, exact: int = 64) -> None:
        if not 0 < exact < 255:
            raise ValueError(f"exact must lie in 1..254, got {exact}")
        from PIL import Image

        picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
        sample = np.concatenate([np.asarray(frames[i])[::2, ::2, :3] for i in picks], axis=0)
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

    def apply(self, frame: np.ndarray):
        """``frame`` ``(H, W, 3)`` uint8 as a Pillow "P" image on this palette."""
        from PIL import Image

        frame = np.ascontiguousarray(np.asarray(frame)[..., :3])
        index = np.array(Image.fromarray(frame).quantize(palette=self.image, dither=Image.Dither.NONE))
        exact = self._exact[_pack(frame)]
        hit = exact != 255
        index[hit] = exact[hit]
        out = Image.frombytes("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes())
        out.putpalette(self.image.getpalette())
        return out


def write_animation(frames: Sequence[np.ndarray] | Iterable[np.ndarray], path: str | Path, *,
                    duration_ms: float = 500, loop: int = 0, palette: str = "adaptive") -> Path:
    """Write frames to ``path`` (.gif or .mp4) with ``duration_ms`` per frame.

    GIF: Pillow, looping forever (``loop=0``). ``palette="adaptive"`` computes a palette per
    frame; ``palette="shared"`` computes one palette for all frames and maps each frame to
    it (about 4x faster on map frames, and colours cannot shift between frames; best when
    the frames share their colours, as a time-lapse does).
    MP4: H.264 through imageio-ffmpeg (which ships its own ffmpeg binary).
    """
    from PIL import Image

    path = check_animation_path(path)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ValueError("all frames must have the same size")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    if palette not in ("adaptive", "shared"):
        raise ValueError(f"palette must be 'adaptive' or 'shared', got {palette!r}")
    if path.suffix.lower() == ".gif":
        if palette == "shared":
            pal = SharedPalette(frames)
            images = [pal.apply(f) for f in frames]
        else:
            images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(round(duration_ms)),
                       loop=loop, optimize=False, disposal=1)
    else:
        import imageio.v2 as imageio

        fps = 1000.0 / duration_ms
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error") as writer:
            for f in frames:
                writer.append_data(_even(f))
    tmp.replace(path)  # a killed render never leaves a half-written file under the final name
    return path
