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

__all__ = ["ANIMATION_SUFFIXES", "check_animation_path", "figure_to_array", "write_animation"]

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


def write_animation(frames: Sequence[np.ndarray] | Iterable[np.ndarray], path: str | Path, *,
                    duration_ms: float = 500, loop: int = 0) -> Path:
    """Write frames to ``path`` (.gif or .mp4) with ``duration_ms`` per frame.

    GIF: Pillow with one adaptive palette per frame, looping forever (``loop=0``).
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
    if path.suffix.lower() == ".gif":
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
