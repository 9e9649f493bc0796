"""PyTorch support: ``from epochscope.torch import Recorder``.

Importing this module imports torch; ``import epochscope`` alone does not.
"""

from .record.probe import stratified_probe
from .record.torch import Recorder, find_modules

__all__ = ["Recorder", "find_modules", "stratified_probe"]
