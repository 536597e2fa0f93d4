"""What triage writes (categories, clusters) and reads (history, probes around a failure,
people's labels): the home of every history query triage and flakiness scoring make."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy import func, select

from greenloop.records import Classification, Cluster
from greenloop.store.base import Repository
from greenloop.store.schema import ClusterRow, LabelRow, ProbeResultRow, RunRow, TestResultRow
from greenloop.store.stored import StoredCluster, StoredLabel, StoredProbe, StoredTest, view

# Tests per history query: well under every database's limit of bound parameters.
HISTORY_BATCH = 500


class TriageRepository(Repository):
    """The `clusters` and `labels` tables, and the history reads over tests and probes."""

    def record_triage(
        self,
        run_id: str,
        iteration: int,
        classifications: Iterable[Classification],
        clusters: Iterable[Cluster],
        authentic: dict[str, bool],
    ) -> None:
        """Attach categories, clusters and authenticity to the iteration's test rows."""
        clusters = list(clusters)
        by_test = {t: c for c in clusters for t in c.tests}
        categories = {c.nodeid: c.category.value for c in classifications}
        with self.session() as s:
            rows = s.scalars(
                select(TestResultRow).where(
                    TestResultRow.run_id == run_id, TestResultRow.iteration == iteration
                )
            )
            for row in rows:
                row.category = categories.get(row.nodeid)
                row.real = authentic.get(row.nodeid, True)
                cluster = by_test.get(row.nodeid)
                if cluster:
                    row.cluster_id = cluster.id
                    row.fingerprint = cluster.fingerprint
            s.add_all(
                ClusterRow(
                    run_id=run_id,
                    iteration=iteration,
                    cluster_id=c.id,
                    fingerprint=c.fingerprint,
                    category=c.category.value,
                    confidence=c.confidence,
                    title=c.title,
                    reason=c.reason,
                    count=c.count,
                    impact_usd=c.impact_usd,
                    root_cause=_jsonable(asdict(c.root_cause)),
                    tests=list(c.tests),
                )
                for c in clusters
            )

    # ------------------------------------------------------------------ history

    def test_history(self, nodeid: str, limit: int = 20) -> list[StoredTest]:
        """The test's most recent results, newest first."""
        with self.session() as s:
            query = (
                select(TestResultRow)
                .where(TestResultRow.nodeid == nodeid)
                .order_by(TestResultRow.finished_at.desc(), TestResultRow.id.desc())
                .limit(limit)
            )
            return [view(StoredTest, r) for r in s.scalars(query)]

    def test_histories(
        self, nodeids: Iterable[str], limit: int = 20, *, environment: str | None = None
    ) -> dict[str, list[StoredTest]]:
        """`test_history` of many tests at once: each test's most recent results, newest
        first (a test with none maps to []). One query per HISTORY_BATCH tests (a window
        function numbers each test's rows), not one per test. `environment`: only the
        results of runs in that environment (None: every environment)."""
        wanted = list(dict.fromkeys(nodeids))
        out: dict[str, list[StoredTest]] = {n: [] for n in wanted}
        for lo in range(0, len(wanted), HISTORY_BATCH):
            chunk = wanted[lo : lo + HISTORY_BATCH]
            newest = (
                func.row_number()
                .over(
                    partition_by=TestResultRow.nodeid,
                    order_by=(TestResultRow.finished_at.desc(), TestResultRow.id.desc()),
                )
                .label("newest")
            )
            of_chunk = select(TestResultRow.id, newest).where(TestResultRow.nodeid.in_(chunk))
            if environment is not None:
                of_chunk = of_chunk.join(RunRow, RunRow.id == TestResultRow.run_id).where(
                    RunRow.environment == environment
                )
            ranked = of_chunk.subquery()
            query = (
                select(TestResultRow)
                .join(ranked, ranked.c.id == TestResultRow.id)
                .where(ranked.c.newest <= limit)
                .order_by(ranked.c.newest)
            )
            with self.session() as s:
                for row in s.scalars(query):
                    out[row.nodeid].append(view(StoredTest, row))
        return out

    def probes_between(
        self,
        start: datetime,
        end: datetime,
        component: str | None = None,
        *,
        failed_only: bool = False,
    ) -> list[StoredProbe]:
        """Probe results in a time window, oldest first (then in the order stored): what was
        healthy when a test failed. `failed_only`: the failed checks alone."""
        with self.session() as s:
            query = select(ProbeResultRow).where(
                ProbeResultRow.checked_at >= start, ProbeResultRow.checked_at <= end
            )
            if component:
                query = query.where(ProbeResultRow.component == component)
            if failed_only:
                query = query.where(ProbeResultRow.ok.is_(False))
            rows = s.scalars(query.order_by(ProbeResultRow.checked_at, ProbeResultRow.id))
            return [view(StoredProbe, r) for r in rows]

    def run_clusters(self, run_id: str) -> list[StoredCluster]:
        with self.session() as s:
            query = select(ClusterRow).where(ClusterRow.run_id == run_id)
            return [view(StoredCluster, r) for r in s.scalars(query.order_by(ClusterRow.id))]

    def last_cluster(self, fingerprint: str, *, not_run: str) -> StoredCluster | None:
        """The fingerprint's most recent cluster from another run: what changed since."""
        with self.session() as s:
            query = (
                select(ClusterRow)
                .where(ClusterRow.fingerprint == fingerprint, ClusterRow.run_id != not_run)
                .order_by(ClusterRow.id.desc())
                .limit(1)
            )
            row = s.scalars(query).first()
            return view(StoredCluster, row) if row is not None else None

    # ------------------------------------------------------------------ labels

    def label_target(self, target: str) -> tuple[str, str] | None:
        """(kind, failure text) of what `greenloop label TARGET` names: a cluster (its id or
        a fingerprint prefix of 8+ characters) or a test node id; None when the store has
        neither. The text is the cluster's title and its tests' messages, or the test's
        latest non-passing message."""
        with self.session() as s:
            cluster = s.scalars(
                select(ClusterRow)
                .where(
                    (ClusterRow.cluster_id == target)
                    | (
                        ClusterRow.fingerprint.startswith(target, autoescape=True)
                        if len(target) >= 8
                        else ClusterRow.cluster_id == target
                    )
                )
                .order_by(ClusterRow.id.desc())
                .limit(1)
            ).first()
            if cluster is not None:
                messages = s.scalars(
                    select(TestResultRow.message).where(
                        TestResultRow.run_id == cluster.run_id,
                        TestResultRow.iteration == cluster.iteration,
                        TestResultRow.nodeid.in_(list(cluster.tests)),
                    )
                ).all()
                return "cluster", "\n".join([cluster.title, *dict.fromkeys(messages)])
            row = s.scalars(
                select(TestResultRow)
                .where(TestResultRow.nodeid == target, TestResultRow.outcome != "passed")
                .order_by(TestResultRow.finished_at.desc(), TestResultRow.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                return "test", row.message
        return None

    def record_label(
        self,
        target: str,
        category: str,
        *,
        kind: str | None = None,
        text: str | None = None,
        note: str = "",
        by: str = "",
        at: datetime | None = None,
    ) -> StoredLabel:
        """Store a person's verdict; later triage compares failures with `text`. Without
        `kind` and `text`, both come from what the store holds for `target`
        (`label_target`); a target the store does not know is kept with no text (it can
        decide nothing until labelled again)."""
        if kind is None or text is None:
            found = self.label_target(target)
            kind = kind or (found[0] if found else "unknown")
            text = text if text is not None else (found[1] if found else "")
        row = LabelRow(
            target=target,
            target_kind=kind,
            category=category,
            note=note,
            text=text,
            labelled_by=by,
            labelled_at=at or datetime.now(UTC),
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return view(StoredLabel, row)

    def labels(self) -> list[StoredLabel]:
        """Every label, newest first (a newer verdict on the same failure wins)."""
        with self.session() as s:
            rows = s.scalars(select(LabelRow).order_by(LabelRow.id.desc()))
            return [view(StoredLabel, r) for r in rows]


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
