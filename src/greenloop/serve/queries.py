"""The dashboard's reads: typed views of the store, one page of rows at a time.

Every list is paginated (`limit`, `offset`) and built from a bounded number of
queries per page (one for the rows, one per aggregate over those rows' ids), so a
page costs the same on a store of 10,000 runs as on one of ten. The same views
feed the HTML pages and the JSON API; `greenloop.serve.app` redacts them before
either sees them. Multi-table reads live here rather than in the Store, as the
outbox's do in trackers/outbox.py; they run unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from greenloop.records import Outcome
from greenloop.report.trend import trend_from_summaries
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
from greenloop.triage.flaky import flaky_report

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_FAILURES = tuple(o.value for o in Outcome if o.is_failure)
_EXECUTED = ("passed", *_FAILURES)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list: `items`, and where it sits in the `total`."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + self.limit
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


def clamp_limit(limit: int | None) -> int:
    """A page size the store can afford: 1..MAX_LIMIT, DEFAULT_LIMIT when not given."""
    if limit is None:
        return DEFAULT_LIMIT
    return min(max(int(limit), 1), MAX_LIMIT)


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
        total, rows = _page_rows(s, RunRow, where, order, limit, offset)
        items = _run_items(s, rows)
    return Page(items=items, total=total, limit=limit, offset=offset)


def _page_rows(
    s: Session, table: Any, where: list[Any], order: tuple[Any, ...], limit: int, offset: int
) -> tuple[int, list[Any]]:
    """(rows matching `where` in all, one page of them in `order`)."""
    total = int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)
    rows = list(s.scalars(select(table).where(*where).order_by(*order).limit(limit).offset(offset)))
    return total, rows


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
            run_id: _seconds(started, finished)
            for run_id, started, finished in rows
            if finished is not None
        }


def _seconds(start: datetime, end: datetime) -> float:
    """Seconds from start to end (never negative); naive SQLite times are UTC."""
    return max(
        (
            end.replace(tzinfo=end.tzinfo or UTC) - start.replace(tzinfo=start.tzinfo or UTC)
        ).total_seconds(),
        0.0,
    )


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
                duration_s=_seconds(started, finished) if finished else None,
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
        return _seconds(self.created_at, self.updated_at)


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


def _probe_view(p: ProbeResultRow) -> ProbeView:
    return ProbeView(
        iteration=p.iteration,
        component=p.component,
        name=p.name,
        kind=p.kind,
        target=p.target,
        ok=p.ok,
        latency_ms=p.latency_ms,
        detail=p.detail,
        checked_at=aware(p.checked_at) or p.checked_at,
    )


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
    return IssueView(
        tracker=i.tracker,
        fingerprint=i.fingerprint,
        key=i.key,
        title=i.title,
        state=i.state,
        location=i.location,
        category=i.category,
        occurrences=i.occurrences,
        created_at=aware(i.created_at) or i.created_at,
        updated_at=aware(i.updated_at) or i.updated_at,
        last_run_id=i.last_run_id,
        needs_person=i.needs_person,
    )


# --------------------------------------------------------------------------- clusters and issues


@dataclass(frozen=True)
class ClusterHistory:
    """One problem (a fingerprint) across runs. Times are when the runs started."""

    fingerprint: str
    reason: str
    title: str
    category: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int  # runs it appeared in
    last_run_id: str
    impact_usd: float  # in its latest run
    issue: IssueView | None


def list_clusters(
    store: Store, *, limit: int | None = None, offset: int = 0
) -> Page[ClusterHistory]:
    """Problems by fingerprint, most recently seen first, with their issue when filed."""
    limit = clamp_limit(limit)
    offset = max(offset, 0)
    with store.session() as s:
        total = int(s.scalar(select(func.count(func.distinct(ClusterRow.fingerprint)))) or 0)
        grouped = (
            select(
                ClusterRow.fingerprint,
                func.min(RunRow.started_at).label("first"),
                func.max(RunRow.started_at).label("last"),
                func.count(func.distinct(ClusterRow.run_id)).label("runs"),
                func.max(ClusterRow.id).label("latest"),
            )
            .join(RunRow, RunRow.id == ClusterRow.run_id)
            .group_by(ClusterRow.fingerprint)
            .order_by(func.max(RunRow.started_at).desc(), ClusterRow.fingerprint)
            .limit(limit)
            .offset(offset)
        )
        groups = list(s.execute(grouped))
        latest = {
            c.id: c
            for c in s.scalars(select(ClusterRow).where(ClusterRow.id.in_([g[4] for g in groups])))
        }
        issues = {
            i.fingerprint: i
            for i in s.scalars(
                select(IssueRow)
                .where(IssueRow.fingerprint.in_([g[0] for g in groups]))
                .order_by(IssueRow.updated_at)
            )
        }
    items = []
    for fingerprint, first, last, runs, latest_id in groups:
        c = latest[latest_id]
        issue = issues.get(fingerprint)
        items.append(
            ClusterHistory(
                fingerprint=fingerprint,
                reason=c.reason,
                title=c.title,
                category=c.category,
                first_seen=aware(first) or first,
                last_seen=aware(last) or last,
                occurrences=int(runs),
                last_run_id=c.run_id,
                impact_usd=c.impact_usd,
                issue=_issue_view(issue) if issue is not None else None,
            )
        )
    return Page(items=items, total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class ProblemsInRun:
    """How many distinct problems (fingerprints) one run had; runs oldest first."""

    run_id: str
    started_at: datetime
    problems: int


def problems_per_run(store: Store, *, runs: int = DEFAULT_LIMIT) -> list[ProblemsInRun]:
    """Distinct problems in each of the newest `runs` runs, oldest first (0 for a clean run)."""
    with store.session() as s:
        recent = list(
            s.execute(
                select(RunRow.id, RunRow.started_at)
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
                .limit(clamp_limit(runs))
            )
        )
        counts = dict(
            s.execute(
                select(ClusterRow.run_id, func.count(func.distinct(ClusterRow.fingerprint)))
                .where(ClusterRow.run_id.in_([r[0] for r in recent]))
                .group_by(ClusterRow.run_id)
            ).all()
        )
    return [
        ProblemsInRun(run_id, aware(started) or started, int(counts.get(run_id, 0)))
        for run_id, started in reversed(recent)
    ]


def list_issues(
    store: Store, *, limit: int | None = None, offset: int = 0, state: str | None = None
) -> Page[IssueView]:
    """The issue index, open first, most recently updated first."""
    limit, offset = clamp_limit(limit), max(offset, 0)
    with store.session() as s:
        where = [IssueRow.state == state] if state else []
        order = (IssueRow.state.desc(), IssueRow.updated_at.desc(), IssueRow.id)
        total, rows = _page_rows(s, IssueRow, where, order, limit, offset)
        items = [_issue_view(i) for i in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class IssueStats:
    """Counts over the whole issue index; MTTR in seconds, None before any issue closed."""

    open: int
    closed: int
    mttr_s: float | None  # mean time from filing to closing, closed issues only


def issue_stats(store: Store) -> IssueStats:
    """Open and closed issues and the mean time to resolve the closed ones.

    A closed issue's `updated_at` is when greenloop closed it (the tracker lifecycle
    closes it after its green streak and leaves a closed issue alone until it recurs,
    which reopens it), so for closed issues `updated_at - created_at` is the time to
    resolve, to within the outbox's delivery of the close.
    """
    with store.session() as s:
        counts = dict(
            s.execute(select(IssueRow.state, func.count()).group_by(IssueRow.state)).all()
        )
        closed = s.execute(
            select(IssueRow.created_at, IssueRow.updated_at).where(IssueRow.state == "closed")
        ).all()
    spans = [_seconds(created, updated) for created, updated in closed]
    return IssueStats(
        open=int(counts.get("open", 0)),
        closed=int(counts.get("closed", 0)),
        mttr_s=sum(spans) / len(spans) if spans else None,
    )


# --------------------------------------------------------------------------- flaky tests


@dataclass(frozen=True)
class FlakyView:
    """A test whose outcome flips on one revision, with its recent outcomes (oldest first)."""

    nodeid: str
    verdict: str  # flaky | environment | failing | stable
    score: float  # flips / (runs - 1), 0..1
    runs: int
    failures: int
    flips: int
    passed_on_retry: int
    env_failures: int
    revision: str | None
    history: list[tuple[str, str, str]]  # (outcome, run id, finished_at ISO), oldest first


def list_flaky(
    store: Store, window: int, *, limit: int | None = None, offset: int = 0
) -> Page[FlakyView]:
    """`greenloop flaky`'s list (triage.flaky decides), each with its history strip."""
    limit = clamp_limit(limit)
    offset = max(offset, 0)
    report = flaky_report(store, window)
    items = []
    for f in report[offset : offset + limit]:
        rows = store.triage.test_history(f.nodeid, limit=window)
        items.append(
            FlakyView(
                nodeid=f.nodeid,
                verdict=f.verdict,
                score=f.score,
                runs=f.runs,
                failures=f.failures,
                flips=f.flips,
                passed_on_retry=f.passed_on_retry,
                env_failures=f.env_failures,
                revision=f.revision,
                history=[
                    (r.outcome, r.run_id, (aware(r.finished_at) or r.finished_at).isoformat())
                    for r in reversed(rows)
                ],
            )
        )
    return Page(items=items, total=len(report), limit=limit, offset=offset)


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class ComponentAvailability:
    """One component's probe checks over the last runs; availability is a fraction 0..1."""

    component: str
    ok: int
    total: int
    mean_latency_ms: float | None
    per_run: list[tuple[str, int, int]]  # (run id, ok, total) for every run, oldest first
    availability: float | None  # ok / total, None without checks
    last_failure: ProbeView | None


def component_availability(
    store: Store, *, runs: int = DEFAULT_LIMIT
) -> list[ComponentAvailability]:
    """Availability per component over the newest `runs` runs, components by name."""
    with store.session() as s:
        recent = list(
            s.execute(
                select(RunRow.id, RunRow.started_at)
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
                .limit(clamp_limit(runs))
            )
        )
        ids = [r[0] for r in recent]
        order = {run_id: i for i, run_id in enumerate(reversed(ids))}
        rows = s.execute(
            select(
                ProbeResultRow.component,
                ProbeResultRow.run_id,
                ProbeResultRow.ok,
                func.count(),
                func.avg(ProbeResultRow.latency_ms),
            )
            .where(ProbeResultRow.run_id.in_(ids))
            .group_by(ProbeResultRow.component, ProbeResultRow.run_id, ProbeResultRow.ok)
        ).all()
        failures = {}
        for component, failed in s.execute(
            select(ProbeResultRow.component, func.max(ProbeResultRow.id))
            .where(ProbeResultRow.run_id.in_(ids), ProbeResultRow.ok.is_(False))
            .group_by(ProbeResultRow.component)
        ):
            failures[component] = failed
        failure_rows = {
            p.id: _probe_view(p)
            for p in s.scalars(
                select(ProbeResultRow).where(ProbeResultRow.id.in_(list(failures.values())))
            )
        }
    per: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    latency: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for component, run_id, ok, n, avg in rows:
        cell = per[component][run_id]
        cell[1] += n
        if ok:
            cell[0] += n
        if avg is not None:
            latency[component][0] += float(avg) * n
            latency[component][1] += n
    out = []
    oldest_first = sorted(order, key=order.__getitem__)
    for component in sorted(per):
        # Every run on the same axis: a run that did not probe this component is (0, 0).
        cells = [(run_id, per[component].get(run_id, [0, 0])) for run_id in oldest_first]
        ok = sum(c[0] for _, c in cells)
        total = sum(c[1] for _, c in cells)
        lat = latency[component]
        out.append(
            ComponentAvailability(
                component=component,
                ok=ok,
                total=total,
                mean_latency_ms=lat[0] / lat[1] if lat[1] else None,
                per_run=[(run_id, c[0], c[1]) for run_id, c in cells],
                availability=ok / total if total else None,
                last_failure=failure_rows.get(failures.get(component, -1)),
            )
        )
    return out
