"""Keras 3 support: ``from epochscope.keras import Recorder``.

Importing this module imports keras; ``import epochscope`` alone does not.
"""

from .record.keras import Recorder, find_layers
from .record.probe import stratified_probe

__all__ = ["Recorder", "find_layers", "stratified_probe"]
