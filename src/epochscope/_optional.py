"""Optional dependencies: import on first use, or say which extra to install."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from types import ModuleType

from ._errors import CompileCacheError, MissingDependencyError

__all__ = ["require", "require_all", "import_compiled"]


def _compile_cache_error(err: RuntimeError, module: str) -> CompileCacheError | None:
    """numba's "cannot cache function ...: no locator available" (no folder it may write its
    cache to: a read-only install, home and ``NUMBA_CACHE_DIR``) as a one-line error saying
    what to do; ``None`` for any other RuntimeError."""
    if "no locator available" not in str(err):
        return None
    return CompileCacheError(
        f"importing '{module}' failed: numba finds no writable folder for its compiled-code cache "
        f"(NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR')!r}, the package's __pycache__ and ~/.cache "
        f"are not writable: {err}); set NUMBA_CACHE_DIR to a writable folder, e.g. "
        "export NUMBA_CACHE_DIR=/tmp/numba-cache")


def import_compiled(module: str) -> ModuleType:
    """Import ``module``, whose numba functions are compiled with ``cache=True``, turning numba's
    failure to find a cache folder into :class:`CompileCacheError` (a clear message, not a traceback).

    >>> import_compiled("epochscope.maps._sgd_kernels")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except RuntimeError as err:
        wrapped = _compile_cache_error(err, module)
        if wrapped is None:
            raise
        raise wrapped from err


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
    except RuntimeError as err:  # umap-learn's numba functions are cached too
        wrapped = _compile_cache_error(err, module)
        if wrapped is None:
            raise
        raise wrapped from err


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
