"""The framework's training call that runs a callback recorder's hooks, and whether it still runs.

Keras' ``fit`` and the Trainer's ``train`` call no hook when training fails (an error in a
batch, in a user's callback, a KeyboardInterrupt), so their recorder cannot release its run
then. It notes the training call at its first hook instead (:class:`TrainingCall`); once that
call is no longer running, the run's lock lets the next writer in this process take the run
over (:meth:`~epochscope.run.lock.RunLock.hand_over`), and ``epochscope check`` in this
process no longer names a writer.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType

__all__ = ["TrainingCall"]


def _package(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", "")).split(".")[0]


class TrainingCall:
    """The call into the framework (``model.fit(...)``, ``trainer.train()``) that the hook calling
    this constructor runs in: the outermost of the framework's own frames (``package``) above the
    hook and epochscope's frames; ``running`` says whether it has returned or raised since.

    The frame is held (so its identity stays its own) until :meth:`forget`; where no frame of
    ``package`` is found (hooks called by hand), the call counts as running, never as ended.
    """

    def __init__(self, package: str) -> None:
        self._thread = threading.get_ident()
        frame = sys._getframe(1)
        while frame is not None and _package(frame) == "epochscope":
            frame = frame.f_back
        call = None
        while frame is not None and _package(frame) == package:
            call, frame = frame, frame.f_back
        self._frame: FrameType | None = call

    @property
    def running(self) -> bool:
        """Whether the training call is still on its thread's stack (``True`` when it was not found)."""
        if self._frame is None:
            return True
        frame = sys._current_frames().get(self._thread)
        while frame is not None:
            if frame is self._frame:
                return True
            frame = frame.f_back
        return False

    def ended(self) -> bool:
        """``not running``: the training call returned or raised (or its thread is gone)."""
        return not self.running

    def forget(self) -> None:
        """Drop the frame (it holds the call's locals: the model, the data) once the run is released."""
        self._frame = None
