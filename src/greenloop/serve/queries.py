"""The dashboard's reads: typed views of the store, one page of rows at a time.

Every list is paginated (`limit`, `offset`) and built from a bounded number of
queries per page (one for the rows, one per aggregate over those rows' ids), so a
page costs the same on a store of 10,000 runs as on one of ten. The same views
feed the HTML pages and the JSON API; `greenloop.serve.app` redacts them before
either sees them. Multi-table reads live here rather than in the Store (the stages'
repositories); they run unchanged on SQLite and PostgreSQL. This module holds the run
reads; problems.py the cluster, issue, flaky and availability reads, views.py the view
records, paging.py the page bounds. All are re-exported here: `queries.X` is the API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from greenloop.report.trend import trend_from_summaries
from greenloop.serve.paging import (
    _EXECUTED,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    clamp_limit,
    page_rows,
    seconds_between,
)
from greenloop.serve.problems import (
    ClusterHistory,
    ComponentAvailability,
    FlakyView,
    IssueStats,
    ProblemsInRun,
    component_availability,
    issue_stats,
    list_clusters,
    list_flaky,
    list_issues,
    problems_per_run,
)
from greenloop.serve.views import (
    ActionView,
    ClusterView,
    IssueView,
    PhaseView,
    ProbeView,
    TestView,
    WhyView,
    _cluster_view,
    _issue_view,
    _probe_view,
)
from greenloop.store import Store, aware
from greenloop.store.schema import (
    ActionRow,
    ClusterRow,
    IssueRow,
    IterationRow,
    PhaseRow,
    ProbeResultRow,
    RunRow,
    TestResultRow,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ActionView",
    "ClusterHistory",
    "ClusterView",
    "ComponentAvailability",
    "FlakyView",
    "IssueStats",
    "IssueView",
    "Page",
    "PhaseView",
    "ProbeView",
    "ProblemsInRun",
    "RunDetail",
    "RunListItem",
    "TestView",
    "TrendPoint",
    "WhyView",
    "clamp_limit",
    "component_availability",
    "issue_stats",
    "list_clusters",
    "list_flaky",
    "list_issues",
    "list_runs",
    "problems_per_run",
    "run_detail",
    "run_trend_points",
]

# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunListItem:
    """A run as the runs list shows it. Durations in seconds, money in USD."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str  # running | finished | interrupted | crashed | resumed
    verdict: str | None
    exit_code: int | None
    environment: str
    revision: str | None
    focus: str
    duration_s: float | None  # time to verdict; None while running
    iterations: int
    passed: int
    executed: int  # tests that ran to an outcome, every iteration
    probes_ok: int
    probes_total: int
    pass_rate: float | None  # passed / executed, None when nothing ran
    availability: float | None  # probes_ok / probes_total, None without probes
    mrr_at_risk_usd: float  # the last iteration's clusters' impact


@dataclass(frozen=True)
class TrendPoint:
    """One run on the trend charts, oldest first. Rates are fractions 0..1."""

    run_id: str
    started_at: datetime
    verdict: str | None
    pass_rate: float | None
    availability: float | None
    duration_s: float | None


def list_runs(
    store: Store, *, limit: int | None = None, offset: int = 0, verdict: str | None = None
) -> Page[RunListItem]:
    """Runs, newest first, one page; `verdict` keeps only runs that ended so."""
    limit, offset = clamp_limit(limit), max(offset, 0)
    with store.session() as s:
        where = [RunRow.verdict == verdict] if verdict else []
        order = (RunRow.started_at.desc(), RunRow.id.desc())
        total, rows = page_rows(s, RunRow, where, order, limit, offset)
        items = _run_items(s, rows)
    return Page(items=items, total=total, limit=limit, offset=offset)


def run_trend_points(
    store: Store, *, limit: int = DEFAULT_LIMIT, until: str | None = None
) -> list[TrendPoint]:
    """The trend over the last `limit` runs up to `until` (or the newest), oldest first."""
    summaries = store.runs.run_summaries(limit=clamp_limit(limit), until=until)
    trend = trend_from_summaries(summaries)
    durations = _durations(store, [s.run_id for s in summaries])
    return [
        TrendPoint(
            run_id=s.run_id,
            started_at=s.started_at,
            verdict=s.verdict,
            pass_rate=rate,
            availability=avail,
            duration_s=durations.get(s.run_id),
        )
        for s, rate, avail in zip(summaries, trend.pass_rates, trend.availability, strict=True)
    ]


def _durations(store: Store, ids: Sequence[str]) -> dict[str, float]:
    with store.session() as s:
        rows = s.execute(
            select(RunRow.id, RunRow.started_at, RunRow.finished_at).where(RunRow.id.in_(ids))
        )
        return {
            run_id: seconds_between(started, finished)
            for run_id, started, finished in rows
            if finished is not None
        }


def _run_items(s: Session, rows: Sequence[RunRow]) -> list[RunListItem]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    tests: dict[tuple[str, str], int] = {
        (run_id, outcome): n
        for run_id, outcome, n in s.execute(
            select(TestResultRow.run_id, TestResultRow.outcome, func.count())
            .where(TestResultRow.run_id.in_(ids))
            .group_by(TestResultRow.run_id, TestResultRow.outcome)
        )
    }
    probes: dict[tuple[str | None, bool], int] = {
        (run_id, bool(ok)): n
        for run_id, ok, n in s.execute(
            select(ProbeResultRow.run_id, ProbeResultRow.ok, func.count())
            .where(ProbeResultRow.run_id.in_(ids))
            .group_by(ProbeResultRow.run_id, ProbeResultRow.ok)
        )
    }
    iterations = dict(
        s.execute(
            select(IterationRow.run_id, func.max(IterationRow.number))
            .where(IterationRow.run_id.in_(ids))
            .group_by(IterationRow.run_id)
        ).all()
    )
    impact: dict[str, dict[int, float]] = defaultdict(dict)
    for run_id, iteration, usd in s.execute(
        select(ClusterRow.run_id, ClusterRow.iteration, func.sum(ClusterRow.impact_usd))
        .where(ClusterRow.run_id.in_(ids))
        .group_by(ClusterRow.run_id, ClusterRow.iteration)
    ):
        impact[run_id][iteration] = float(usd or 0.0)
    items = []
    for r in rows:
        per_iteration = impact.get(r.id, {})
        started = aware(r.started_at) or r.started_at
        finished = aware(r.finished_at)
        passed = tests.get((r.id, "passed"), 0)
        executed = sum(tests.get((r.id, o), 0) for o in _EXECUTED)
        probes_ok = probes.get((r.id, True), 0)
        probes_total = probes_ok + probes.get((r.id, False), 0)
        items.append(
            RunListItem(
                run_id=r.id,
                started_at=started,
                finished_at=finished,
                status=r.status,
                verdict=r.verdict,
                exit_code=r.exit_code,
                environment=r.environment,
                revision=r.revision,
                focus=r.focus,
                duration_s=seconds_between(started, finished) if finished else None,
                iterations=int(iterations.get(r.id) or 0),
                passed=passed,
                executed=executed,
                probes_ok=probes_ok,
                probes_total=probes_total,
                pass_rate=passed / executed if executed else None,
                availability=probes_ok / probes_total if probes_total else None,
                mrr_at_risk_usd=per_iteration[max(per_iteration)] if per_iteration else 0.0,
            )
        )
    return items


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows. Lists are in the order the run produced them."""

    run: RunListItem
    command_line: str
    worklog: str | None
    json_report: str | None
    phases: list[PhaseView]
    probes: list[ProbeView]
    tests: list[TestView]
    clusters: list[ClusterView]
    actions: list[ActionView]
    issues: list[IssueView]
    outcome_counts: dict[str, int] = field(default_factory=dict)  # last iteration


def run_detail(store: Store, run_id: str) -> RunDetail | None:
    """One run with everything it recorded; None when the store has no such run."""
    with store.session() as s:
        row = s.get(RunRow, run_id)
        if row is None:
            return None
        item = _run_items(s, [row])[0]
        phase_rows = list(s.scalars(select(PhaseRow).where(PhaseRow.run_id == run_id)))
        test_rows = list(
            s.scalars(
                select(TestResultRow)
                .where(TestResultRow.run_id == run_id)
                .order_by(TestResultRow.id)
            )
        )
        probe_rows = list(
            s.scalars(
                select(ProbeResultRow)
                .where(ProbeResultRow.run_id == run_id)
                .order_by(ProbeResultRow.iteration, ProbeResultRow.id)
            )
        )
        cluster_rows = list(
            s.scalars(select(ClusterRow).where(ClusterRow.run_id == run_id).order_by(ClusterRow.id))
        )
        action_rows = list(
            s.scalars(select(ActionRow).where(ActionRow.run_id == run_id).order_by(ActionRow.id))
        )
        fingerprints = {c.fingerprint for c in cluster_rows}
        issue_query = select(IssueRow).where(
            (IssueRow.last_run_id == run_id) | IssueRow.fingerprint.in_(fingerprints)
        )
        issue_rows = list(s.scalars(issue_query.order_by(IssueRow.id)))
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in test_rows:
        counts[(t.iteration, t.phase)][t.outcome] += 1
    last = max((t.iteration for t in test_rows), default=0)
    last_counts: dict[str, int] = defaultdict(int)
    for t in test_rows:
        if t.iteration == last:
            last_counts[t.outcome] += 1
    return RunDetail(
        run=item,
        command_line=row.command_line,
        worklog=row.worklog,
        json_report=row.json_report,
        phases=[
            PhaseView(
                iteration=p.iteration,
                name=p.name,
                status=p.status,
                duration_s=p.duration_s,
                command=p.command,
                blocked_by=p.blocked_by,
                note=p.note,
                counts=dict(counts.get((p.iteration, p.name), {})),
            )
            for p in sorted(phase_rows, key=lambda p: (p.iteration, p.id))
        ],
        probes=[_probe_view(p) for p in probe_rows],
        tests=[
            TestView(
                iteration=t.iteration,
                phase=t.phase,
                nodeid=t.nodeid,
                outcome=t.outcome,
                duration_s=t.duration_s,
                category=t.category,
                cluster_id=t.cluster_id,
                real=t.real,
                message=t.message,
                reruns=list(t.reruns or []),
            )
            for t in test_rows
        ],
        clusters=[_cluster_view(c) for c in cluster_rows],
        actions=[
            ActionView(
                iteration=a.iteration,
                name=a.name,
                kind=a.kind,
                status=a.status,
                detail=a.detail,
                started_at=aware(a.started_at) or a.started_at,
                duration_s=a.duration_s,
            )
            for a in action_rows
        ],
        issues=[_issue_view(i) for i in issue_rows],
        outcome_counts=dict(last_counts),
    )
