"""Optional dependencies: import on first use, or say which extra to install."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from types import ModuleType

from ._errors import MissingDependencyError

__all__ = ["require", "require_all"]


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


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module blocked in sys.modules
        return False


def require_all(modules: Sequence[str], *, extra: str, purpose: str) -> None:
    """Raise :class:`MissingDependencyError` naming every one of ``modules`` that is not installed
    and the one extra that brings them all; imports nothing.

    For work that needs several extras' packages (the demo: torch, then umap minutes later), so
    the user learns it before the slow part starts, with one ``pip install`` instead of one per
    failure.

    >>> require_all(["numpy", "scipy"], extra="core", purpose="maps")
    """
    missing = [m for m in modules if not _installed(m)]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise MissingDependencyError(
            f"{names} {'is' if len(missing) == 1 else 'are'} needed for {purpose} but not installed; "
            f"run: pip install 'epochscope[{extra}]'"
        )
