"""The typed views the dashboard shows (HTML and JSON alike), and how store rows become them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from greenloop.serve.paging import seconds_between
from greenloop.store.schema import (
    ClusterRow,
    IssueRow,
    ProbeResultRow,
)
from greenloop.store.stored import view


@dataclass(frozen=True)
class PhaseView:
    iteration: int
    name: str
    status: str
    duration_s: float
    command: str
    blocked_by: str | None
    note: str
    counts: dict[str, int]  # outcome -> tests


@dataclass(frozen=True)
class ProbeView:
    iteration: int | None
    component: str
    name: str
    kind: str
    target: str
    ok: bool
    latency_ms: float | None
    detail: str
    checked_at: datetime


@dataclass(frozen=True)
class TestView:
    iteration: int
    phase: str
    nodeid: str
    outcome: str
    duration_s: float
    category: str | None
    cluster_id: str | None
    real: bool
    message: str  # the failure's evidence: its one-line message or excerpt
    reruns: list[str]


@dataclass(frozen=True)
class WhyView:
    why: str
    evidence: str
    verified: bool  # True: the evidence proves it; False: a hypothesis


@dataclass(frozen=True)
class ClusterView:
    iteration: int
    cluster_id: str
    fingerprint: str
    category: str
    confidence: float
    reason: str
    title: str
    count: int
    impact_usd: float
    summary: str
    component: str | None
    whys: list[WhyView]
    tests: list[str]


@dataclass(frozen=True)
class ActionView:
    iteration: int
    name: str
    kind: str
    status: str
    detail: str
    started_at: datetime
    duration_s: float


@dataclass(frozen=True)
class IssueView:
    tracker: str
    fingerprint: str
    key: str | None
    title: str
    state: str
    location: str
    category: str
    occurrences: int
    created_at: datetime
    updated_at: datetime
    last_run_id: str | None
    needs_person: bool

    @property
    def open_for_s(self) -> float:
        """Seconds from filing to the last update (for a closed issue: to its closing)."""
        return seconds_between(self.created_at, self.updated_at)


def _probe_view(p: ProbeResultRow) -> ProbeView:
    return view(ProbeView, p)


def _cluster_view(c: ClusterRow) -> ClusterView:
    cause = c.root_cause or {}
    return ClusterView(
        iteration=c.iteration,
        cluster_id=c.cluster_id,
        fingerprint=c.fingerprint,
        category=c.category,
        confidence=c.confidence,
        reason=c.reason,
        title=c.title,
        count=c.count,
        impact_usd=c.impact_usd,
        summary=str(cause.get("summary") or ""),
        component=cause.get("component"),
        whys=[
            WhyView(
                why=str(w.get("why", "")),
                evidence=str(w.get("evidence", "")),
                verified=bool(w.get("verified")),
            )
            for w in cause.get("whys") or []
        ],
        tests=list(c.tests or []),
    )


def _issue_view(i: IssueRow) -> IssueView:
    return view(IssueView, i)
