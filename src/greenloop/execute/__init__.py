"""Stage 3, execute: select a phase's tests, run them, and record how each ended.

    select_tests(config, phase, index, *, focus, store) -> Selection
    run_phase(config, phase, selection, *, store, reporter, run_env) -> PhaseResult
    blocked_phase(config, phase, selection, component, note) -> PhaseResult

Names are imported lazily: the pytest plugin lives in this package and every
test process imports it, so loading it must not pull in config, pydantic or
the runners.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenloop.execute.phase import blocked_phase, run_phase
    from greenloop.execute.progress import (
        NullReporter,
        PlainReporter,
        Reporter,
        RichReporter,
        make_reporter,
    )
    from greenloop.execute.selection import Selection, select_tests

_EXPORTS = {
    "select_tests": "greenloop.execute.selection",
    "Selection": "greenloop.execute.selection",
    "run_phase": "greenloop.execute.phase",
    "blocked_phase": "greenloop.execute.phase",
    "Reporter": "greenloop.execute.progress",
    "RichReporter": "greenloop.execute.progress",
    "PlainReporter": "greenloop.execute.progress",
    "NullReporter": "greenloop.execute.progress",
    "make_reporter": "greenloop.execute.progress",
}

__all__ = [
    "NullReporter",
    "PlainReporter",
    "Reporter",
    "RichReporter",
    "Selection",
    "blocked_phase",
    "make_reporter",
    "run_phase",
    "select_tests",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'greenloop.execute' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
