"""Hugging Face support: ``from epochscope.transformers import Recorder`` (a ``TrainerCallback``).

Importing this module imports torch and transformers; ``import epochscope`` alone does not.
"""

from .record.probe import stratified_probe
from .record.transformers import Recorder, default_tokens, default_weights

__all__ = ["Recorder", "default_tokens", "default_weights", "stratified_probe"]
