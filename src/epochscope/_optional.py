"""Optional dependencies: import on first use, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    >>> np = require("numpy", extra="core")
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is needed{what} but is not installed; "
            f"run: pip install 'epochscope[{extra}]'"
        ) from err
