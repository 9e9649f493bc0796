"""Reading back what epochscope wrote, with readers independent of its writers."""

from __future__ import annotations


def read_mp4(path) -> list:
    """Every frame of an MP4 as ``(H, W, 3)`` uint8 arrays, decoded by ffmpeg itself
    (imageio-ffmpeg's reader), independently of how epochscope wrote the file."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = reader.__next__()
    w, h = meta["size"]
    return [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in reader]
