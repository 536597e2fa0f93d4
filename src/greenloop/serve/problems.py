"""The dashboard's problem reads: clusters across runs, the issue index, flaky tests and
component availability, each one page at a time (see queries.py for the bounds)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from greenloop.serve.paging import DEFAULT_LIMIT, Page, clamp_limit, page_rows, seconds_between
from greenloop.serve.views import IssueView, ProbeView, _issue_view, _probe_view
from greenloop.store import Store, aware
from greenloop.store.schema import (
    ClusterRow,
    IssueRow,
    ProbeResultRow,
    RunRow,
)
from greenloop.triage.flaky import flaky_report

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
        total, rows = page_rows(s, IssueRow, where, order, limit, offset)
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
    spans = [seconds_between(created, updated) for created, updated in closed]
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
