"""Fixtures for the integration tests; the readers live in readers.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/integrations is not a package; its helper module is put on the path here.
sys.path.append(str(Path(__file__).parent))  # appended: it must not shadow another folder's conftest
from readers import ProjectorReader  # noqa: E402


@pytest.fixture
def projector_reader():
    pytest.importorskip("tensorboard", reason="the TensorBoard tests need the tensorboard extra")
    pytest.importorskip("werkzeug", reason="the projector plugin serves through werkzeug (a tensorboard dependency)")
    return ProjectorReader
