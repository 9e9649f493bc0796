"""Checking a run directory, and repairing what can be repaired without losing data.

:func:`check_run` (also ``epochscope.check_run`` and ``epochscope check RUN``) returns a
:class:`CheckReport`. The checks ask the run's own layout and reader
(:mod:`epochscope.run`) and each cache's own validation (:mod:`epochscope.maps.cache`)
instead of keeping copies of them. Modules, one job each: :mod:`.api` (check and repair),
:mod:`.context` (one pass's findings and primitives), :mod:`.files` (the run's root),
:mod:`.epochs`, :mod:`.caches`, :mod:`.repair` (carrying the plan out), :mod:`.report`
(findings, actions and their text).
"""

from __future__ import annotations

from .api import check_run
from .report import CheckReport, Finding, RepairAction

__all__ = ["CheckReport", "Finding", "RepairAction", "check_run"]
