"""Phases and test results: what execute writes and what selection, verify and reports read."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from greenloop.records import Outcome, PhaseResult, utcnow
from greenloop.store.base import Repository
from greenloop.store.schema import IssueRow, PhaseRow, TestResultRow
from greenloop.store.stored import StoredPhase, StoredTest, view


class ResultRepository(Repository):
    """The `phases` and `test_results` tables."""

    def record_phase(
        self, run_id: str, iteration: int, phase: PhaseResult, revision: str | None = None
    ) -> None:
        """Keep a finished phase and its tests (messages cut to 2,000 characters)."""
        now = utcnow()
        with self.session() as s:
            s.add(
                PhaseRow(
                    run_id=run_id,
                    iteration=iteration,
                    name=phase.name,
                    status=phase.status.value,
                    duration_s=phase.duration_s,
                    command=phase.command,
                    blocked_by=phase.blocked_by,
                    note=phase.note,
                    completed_at=now,
                )
            )
            s.add_all(
                TestResultRow(
                    run_id=run_id,
                    iteration=iteration,
                    phase=phase.name,
                    nodeid=t.nodeid,
                    outcome=t.outcome.value,
                    duration_s=t.duration_s,
                    message=t.message[:2000],
                    revision=revision,
                    reruns=[o.value for o in t.reruns],
                    finished_at=now,
                )
                for t in phase.tests
            )

    def run_tests(self, run_id: str) -> list[StoredTest]:
        """Every test result of a run, in the order they were kept."""
        with self.session() as s:
            query = select(TestResultRow).where(TestResultRow.run_id == run_id)
            return [view(StoredTest, r) for r in s.scalars(query.order_by(TestResultRow.id))]

    def run_phases(self, run_id: str) -> list[StoredPhase]:
        with self.session() as s:
            query = select(PhaseRow).where(PhaseRow.run_id == run_id)
            return [view(StoredPhase, r) for r in s.scalars(query.order_by(PhaseRow.id))]

    def durations(self, nodeids: Iterable[str] | None = None) -> dict[str, float]:
        """Historical duration (s) per test: the mean of its passing runs."""
        with self.session() as s:
            query = (
                select(TestResultRow.nodeid, func.avg(TestResultRow.duration_s))
                .where(TestResultRow.outcome == Outcome.PASSED.value)
                .group_by(TestResultRow.nodeid)
            )
            if nodeids is not None:
                query = query.where(TestResultRow.nodeid.in_(list(nodeids)))
            return {n: float(d) for n, d in s.execute(query)}

    def pass_durations(
        self, nodeids: Iterable[str] | None = None, last: int = 20
    ) -> dict[str, list[float]]:
        """Durations (s) of each test's last `last` real passing runs, newest first.

        The raw runs, not an average: verify takes a robust median over several of them
        and ignores tests with too few (one run on a busy machine proves nothing).
        """
        recent = (
            select(
                TestResultRow.nodeid,
                TestResultRow.duration_s,
                func.row_number()
                .over(
                    partition_by=TestResultRow.nodeid,
                    order_by=(TestResultRow.finished_at.desc(), TestResultRow.id.desc()),
                )
                .label("age"),
            )
            .where(TestResultRow.outcome == Outcome.PASSED.value, TestResultRow.real.is_(True))
            .subquery()
        )
        query = select(recent.c.nodeid, recent.c.duration_s).where(recent.c.age <= last)
        if nodeids is not None:
            query = query.where(recent.c.nodeid.in_(list(nodeids)))
        out: dict[str, list[float]] = {}
        with self.session() as s:
            for nodeid, duration in s.execute(query.order_by(recent.c.nodeid, recent.c.age)):
                out.setdefault(nodeid, []).append(float(duration or 0.0))
        return out

    def recent_outcomes(self, per_test: int = 5, limit: int = 50000) -> dict[str, tuple[str, ...]]:
        """Each test's latest outcomes, newest first: what risk ordering reads."""
        with self.session() as s:
            query = (
                select(TestResultRow.nodeid, TestResultRow.outcome)
                .order_by(TestResultRow.finished_at.desc(), TestResultRow.id.desc())
                .limit(limit)
            )
            outcomes: dict[str, list[str]] = {}
            for nodeid, outcome in s.execute(query):
                seen = outcomes.setdefault(nodeid, [])
                if len(seen) < per_test:
                    seen.append(outcome)
        return {n: tuple(o) for n, o in outcomes.items()}

    def open_issue_nodeids(self) -> set[str]:
        """Tests whose failures carry the fingerprint of an issue that is still open."""
        with self.session() as s:
            query = (
                select(TestResultRow.nodeid)
                .join(IssueRow, IssueRow.fingerprint == TestResultRow.fingerprint)
                .where(IssueRow.state == "open")
                .distinct()
            )
            return set(s.scalars(query))
