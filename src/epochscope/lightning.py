"""Lightning support: ``from epochscope.lightning import Recorder``.

Importing this module imports torch and lightning; ``import epochscope`` alone does not.
"""

from .record.lightning import Recorder
from .record.probe import stratified_probe

__all__ = ["Recorder", "stratified_probe"]
