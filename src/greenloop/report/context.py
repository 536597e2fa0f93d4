"""What a report needs beyond the RunResult: selections, index, the previous run, the trend.

`ReportContext` is what the loop hands over, records only: the reports read no store
and run no command. `PreviousRun` and the commit are gathered once per run
(`report.run_facts`), the trend after each iteration (`report.run_trend`), by the loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from greenloop.config import Config
from greenloop.records import IndexEntry
from greenloop.report.trend import Trend


@dataclass(frozen=True)
class ReportContext:
    """Everything besides the run the reports are rendered from.

    `selections` maps a phase name to what the run selected for it (any object with
    a `reason` attribute, such as execute.Selection, or a plain string).
    """

    config: Config | None = None
    selections: Mapping[str, Any] = field(default_factory=dict)
    index: tuple[IndexEntry, ...] = ()
    mrr_at_risk_usd: float | None = None
    log_templates: Sequence[Any] = ()
    # Literal secrets to redact besides config.secrets (e.g. tokens read at run time).
    secrets: tuple[str, ...] = ()
    previous: PreviousRun | None = None  # the last finished run before this one
    trend: Trend | None = None  # pass rate and availability up to this run
    commit: str | None = None  # the test repository's commit, when it is a git checkout

    def selection_reason(self, phase: str) -> str:
        selection = self.selections.get(phase)
        if selection is None:
            return ""
        if isinstance(selection, str):
            return selection
        return str(getattr(selection, "reason", "") or "")


@dataclass(frozen=True)
class PreviousRun:
    """The last finished run before this one, as the store remembers it."""

    run_id: str
    verdict: str | None
    started_at: datetime
    revision: str | None
    failing: frozenset[str] = frozenset()
    total: int = 0
