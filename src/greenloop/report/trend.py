"""A text sparkline of pass rate and availability over recent runs, read from the store.

Text, not a chart: it has to read the same in a terminal, a markdown file on
GitHub and a CI log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from greenloop.store import RunSummary, Store

BARS = "▁▂▃▄▅▆▇█"
GAP = "·"  # a run with nothing to measure (no tests ran, no probes)


def sparkline(values: Sequence[float | None]) -> str:
    """Fractions in [0, 1] as bars, absolute (not rescaled) so 90% never looks like 0%."""
    out = []
    for value in values:
        if value is None:
            out.append(GAP)
        else:
            clamped = min(max(value, 0.0), 1.0)
            out.append(BARS[round(clamped * (len(BARS) - 1))])
    return "".join(out)


@dataclass(frozen=True)
class Trend:
    """Pass rate and availability per run, oldest first."""

    run_ids: tuple[str, ...]
    pass_rates: tuple[float | None, ...]
    availability: tuple[float | None, ...]

    @property
    def empty(self) -> bool:
        return not self.run_ids

    def lines(self) -> list[str]:
        if self.empty:
            return []
        return [
            f"pass rate     {sparkline(self.pass_rates)}  {_last(self.pass_rates)}",
            f"availability  {sparkline(self.availability)}  {_last(self.availability)}",
        ]

    def text(self) -> str:
        label = f"last {len(self.run_ids)} run{'s' if len(self.run_ids) != 1 else ''}"
        return "\n".join([*self.lines(), f"({label}, oldest first)"]) if not self.empty else ""


def trend_from_summaries(summaries: Sequence[RunSummary]) -> Trend:
    """Pure: the trend of some run summaries (oldest first)."""
    return Trend(
        run_ids=tuple(s.run_id for s in summaries),
        pass_rates=tuple(s.passed / s.executed if s.executed else None for s in summaries),
        availability=tuple(
            s.probes_ok / s.probes_total if s.probes_total else None for s in summaries
        ),
    )


def run_trend(store: Store, run_id: str | None = None, limit: int = 20) -> Trend:
    """The trend up to and including `run_id` (or the newest run)."""
    return trend_from_summaries(store.runs.run_summaries(limit=limit, until=run_id))


def _last(values: Sequence[float | None]) -> str:
    value = values[-1] if values else None
    return "n/a" if value is None else f"{value:.0%} now"
