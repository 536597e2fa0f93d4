"""The store: every run, probe, test result, cluster, issue and action, in SQL.

SQLite under `.greenloop/` beside the config by default; PostgreSQL when
`store.url` or GREENLOOP_STORE_URL is a postgresql:// URL. Alembic migrations
run automatically when the store is opened.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from greenloop.errors import ConfigError, UserError
from greenloop.records import (
    Action,
    Classification,
    Cluster,
    DeployResult,
    IterationResult,
    Outcome,
    PhaseResult,
    ProbeResult,
    RunResult,
    utcnow,
)
from greenloop.store.schema import (
    ActionRow,
    ClusterRow,
    CollectionRow,
    DeployRow,
    IssueRow,
    IterationRow,
    LabelRow,
    OutboxRow,
    PhaseRow,
    ProbeResultRow,
    RunRow,
    TestResultRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
STORE_URL_ENV = "GREENLOOP_STORE_URL"
# Held (pg_advisory_xact_lock) while migrating, so two first runs on one fresh database
# take turns instead of both creating the tables. Any constant of our own; "gl15".
_MIGRATION_LOCK_ID = 0x676C3135
_SCHEMES = ("sqlite", "postgresql", "postgres")
_SQLITE_HEADER = b"SQLite format 3\x00"


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we stored was UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def store_url(configured: str | None, base_dir: Path) -> str:
    """The URL to open: the environment wins, then the config, then SQLite beside the config."""
    url = os.environ.get(STORE_URL_ENV) or configured
    if not url:
        folder = base_dir / ".greenloop"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'store.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver we ship; plain URLs mean it.
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def store_url_problem(url: str) -> str | None:
    """What is wrong with a store URL, in words, or None when it can be opened as a store.

    Checks the form only (scheme, database name, that an existing SQLite path is a
    SQLite file); it connects to nothing and never echoes the URL (it may hold a password).
    """
    try:
        parsed = make_url(url)
        scheme, _, driver = parsed.drivername.partition("+")
        database = parsed.database
        port = parsed.port
    except (ArgumentError, ValueError):
        return "not a database URL (expected sqlite:///path/store.db or postgresql://host/db)"
    if scheme not in _SCHEMES:
        return (
            f"unsupported store scheme {parsed.drivername!r} "
            "(expected sqlite:///path/store.db or postgresql://user@host:5432/dbname)"
        )
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    if scheme != "sqlite":
        if driver not in ("", "psycopg"):
            return f"unsupported PostgreSQL driver {driver!r} (greenloop ships psycopg)"
        if not database:
            return (
                "a postgresql store URL must name a database "
                "(postgresql://user@host:5432/greenloop); none would mean the server's default"
            )
        return None
    if driver not in ("", "pysqlite"):
        return f"unsupported SQLite driver {driver!r}"
    if not database or database == ":memory:":
        return "a SQLite store needs a file path (sqlite:///path/store.db)"
    path = Path(database).expanduser()
    if path.is_dir():
        return f"{path} is a folder, not a SQLite database file"
    if path.is_file():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            return f"{path}: cannot read: {exc.strerror}"
        if header and header != _SQLITE_HEADER:
            return f"{path} exists and is not a SQLite database"
    return None


def validate_store(config: object) -> None:
    """Check the store URL (environment or config) at load time; ConfigError if unusable."""
    env_url = os.environ.get(STORE_URL_ENV)
    store = getattr(config, "store", None)
    url = env_url or getattr(store, "url", None)
    if not url:
        return
    problem = store_url_problem(store_url(url, Path(".")))
    if problem:
        key = f"environment variable {STORE_URL_ENV}" if env_url else "store.url"
        raise ConfigError(str(getattr(config, "source", "greenloop.toml")), key, problem)


# --------------------------------------------------------------------------- reports and trackers


@dataclass(frozen=True)
class RunSummary:
    """A run's headline numbers, for the trend line."""

    run_id: str
    started_at: datetime
    verdict: str | None
    passed: int
    executed: int  # tests that ran to an outcome (not skipped, not blocked)
    probes_ok: int
    probes_total: int


_EXECUTED = ("passed", "failed", "error", "timeout", "crashed")


class Store:
    """A thin layer of named reads and writes over the tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date.

        Migrations run under a lock (a file lock beside a SQLite database, an advisory
        lock on PostgreSQL), so concurrent first runs on a fresh store take turns.
        A store that cannot be opened is a UserError naming it, password hidden.
        """
        problem = store_url_problem(url)
        if problem:
            raise UserError(f"store: {problem}")
        is_sqlite = url.startswith("sqlite")
        engine = create_engine(
            url,
            connect_args={"timeout": 30} if is_sqlite else {"connect_timeout": 10},
        )
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            if not schema_is_current(engine):
                upgrade(engine)
        except (DBAPIError, OSError) as exc:
            engine.dispose()
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            raise UserError(
                f"store {engine.url.render_as_string(hide_password=True)}: cannot open: {first}"
            ) from None
        return cls(engine)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Be the one process doing `name` (e.g. delivering the outbox) until the block ends.

        Waits for another holder; no transaction stays open meanwhile, so the store stays
        writable for everyone: a flock beside a SQLite database, a session-level advisory
        lock on PostgreSQL. Holders must bound their own work (network deadlines).
        """
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return
        database = self.engine.url.database
        if not database:
            yield
            return
        with open(f"{database}.{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    # ------------------------------------------------------------------ runs

    def start_run(
        self, run_id: str, *, environment: str, focus: str, command_line: str, config_path: str
    ) -> None:
        with self.session() as s:
            s.add(
                RunRow(
                    id=run_id,
                    started_at=utcnow(),
                    status="running",
                    environment=environment,
                    focus=focus,
                    command_line=command_line,
                    config_path=config_path,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                )
            )

    def finish_run(self, run: RunResult, *, status: str | None = None) -> None:
        """Close a run's row; `status` overrides finished/interrupted (e.g. "crashed")."""
        with self.session() as s:
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.run_id)
                .values(
                    finished_at=run.finished_at,
                    status=status or ("interrupted" if run.interrupted else "finished"),
                    verdict=run.verdict.value,
                    exit_code=int(run.exit_code),
                    revision=run.revision,
                    worklog=str(run.worklog) if run.worklog else None,
                    json_report=str(run.json_report) if run.json_report else None,
                )
            )

    def save_progress(self, run_id: str, progress: dict[str, object]) -> None:
        """What --resume needs: the last completed phase and iteration."""
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(progress=progress))

    def mark_dead_runs(self) -> list[str]:
        """Runs left 'running' by a process that no longer exists on this host: crashed."""
        host = socket.gethostname()
        dead: list[str] = []
        with self.session() as s:
            for row in s.scalars(select(RunRow).where(RunRow.status == "running")):
                if row.host == host and row.pid and not _pid_alive(row.pid):
                    row.status = "crashed"
                    row.finished_at = utcnow()
                    dead.append(row.id)
        return dead

    def latest_resumable(self, config_path: str) -> RunRow | None:
        """The newest ended run of this config, if it was interrupted or killed.

        Only the newest: once a later run of the config finished, an older crash is
        history, not something to continue. Runs still in progress are not candidates.
        """
        with self.session() as s:
            query = (
                select(RunRow)
                .where(RunRow.config_path == config_path, RunRow.status != "running")
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
                .limit(1)
            )
            newest = s.scalars(query).first()
        if newest is None or newest.status not in ("interrupted", "crashed"):
            return None
        return newest

    def mark_resumed(self, run_id: str, *, by: str) -> None:
        """An interrupted run another run has taken over: never resumed twice."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                row.status = "resumed"
                progress = dict(row.progress or {})
                progress["resumed_by"] = by
                row.progress = progress

    def run(self, run_id: str) -> RunRow | None:
        with self.session() as s:
            return s.get(RunRow, run_id)

    def latest_run(self, status: str | None = None) -> RunRow | None:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.started_at.desc()).limit(1)
            if status:
                query = query.where(RunRow.status == status)
            return s.scalars(query).first()

    def recent_runs(self, limit: int = 20) -> list[RunRow]:
        with self.session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit))
            return list(rows)

    # ------------------------------------------------------------------ results

    def record_probes(
        self, probes: Iterable[ProbeResult], run_id: str | None = None, iteration: int | None = None
    ) -> None:
        with self.session() as s:
            s.add_all(
                ProbeResultRow(
                    run_id=run_id,
                    iteration=iteration,
                    component=p.component,
                    name=p.name,
                    kind=p.kind,
                    target=p.target,
                    ok=p.ok,
                    latency_ms=p.latency_ms,
                    detail=p.detail,
                    checked_at=p.checked_at,
                )
                for p in probes
            )

    def record_phase(
        self, run_id: str, iteration: int, phase: PhaseResult, revision: str | None = None
    ) -> None:
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

    def record_iteration(self, run_id: str, result: IterationResult) -> None:
        with self.session() as s:
            s.add(
                IterationRow(
                    run_id=run_id,
                    number=result.number,
                    verdict=result.verdict.value,
                    started_at=result.started_at,
                    duration_s=result.duration_s,
                    interrupted=result.interrupted,
                )
            )

    def record_actions(
        self, run_id: str, iteration: int, actions: Iterable[Action], fingerprint: str | None = None
    ) -> None:
        with self.session() as s:
            s.add_all(
                ActionRow(
                    run_id=run_id,
                    iteration=iteration,
                    name=a.name,
                    kind=a.kind,
                    status=a.status.value,
                    detail=a.detail,
                    started_at=a.started_at,
                    duration_s=a.duration_s,
                    fingerprint=fingerprint,
                )
                for a in actions
            )

    def record_deploy(self, run_id: str | None, deploy: DeployResult) -> None:
        with self.session() as s:
            s.add(
                DeployRow(
                    run_id=run_id,
                    revision_before=deploy.revision_before,
                    revision_after=deploy.revision_after,
                    deployed=deploy.deployed,
                    ok=deploy.ok,
                    detail=deploy.detail,
                    at=utcnow(),
                )
            )

    # ------------------------------------------------------------------ history

    def test_history(self, nodeid: str, limit: int = 20) -> list[TestResultRow]:
        """The test's most recent results, newest first."""
        with self.session() as s:
            query = (
                select(TestResultRow)
                .where(TestResultRow.nodeid == nodeid)
                .order_by(TestResultRow.finished_at.desc(), TestResultRow.id.desc())
                .limit(limit)
            )
            return list(s.scalars(query))

    def durations(self, nodeids: Iterable[str] | None = None) -> dict[str, float]:
        """Median-ish historical duration per test: the mean of passing runs."""
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

    def probes_between(
        self, start: datetime, end: datetime, component: str | None = None
    ) -> list[ProbeResultRow]:
        """Probe results in a time window: what was healthy when a test failed."""
        with self.session() as s:
            query = select(ProbeResultRow).where(
                ProbeResultRow.checked_at >= start, ProbeResultRow.checked_at <= end
            )
            if component:
                query = query.where(ProbeResultRow.component == component)
            return list(s.scalars(query.order_by(ProbeResultRow.checked_at)))

    def run_tests(self, run_id: str) -> list[TestResultRow]:
        with self.session() as s:
            query = select(TestResultRow).where(TestResultRow.run_id == run_id)
            return list(s.scalars(query.order_by(TestResultRow.id)))

    def run_phases(self, run_id: str) -> list[PhaseRow]:
        with self.session() as s:
            query = select(PhaseRow).where(PhaseRow.run_id == run_id)
            return list(s.scalars(query.order_by(PhaseRow.id)))

    def run_clusters(self, run_id: str) -> list[ClusterRow]:
        with self.session() as s:
            query = select(ClusterRow).where(ClusterRow.run_id == run_id)
            return list(s.scalars(query.order_by(ClusterRow.id)))

    def run_actions(self, run_id: str) -> list[ActionRow]:
        with self.session() as s:
            query = select(ActionRow).where(ActionRow.run_id == run_id)
            return list(s.scalars(query.order_by(ActionRow.id)))

    # ------------------------------------------------------ gate (owner: gate.py, probes/)

    def recent_probe_results(
        self, components: Iterable[str] | None = None, limit: int = 500
    ) -> list[ProbeResultRow]:
        """The newest probe results, newest first: the history the gate's flapping rules read."""
        with self.session() as s:
            query = select(ProbeResultRow)
            if components is not None:
                query = query.where(ProbeResultRow.component.in_(list(components)))
            query = query.order_by(ProbeResultRow.checked_at.desc(), ProbeResultRow.id.desc())
            return list(s.scalars(query.limit(limit)))

    # ================================================================== reports and trackers
    # Named reads for report/ (trend, previous run) and trackers/ (issue index, outbox).
    # The outbox's multi-statement transactions live in trackers/outbox.py.

    def run_summaries(self, limit: int = 20, until: str | None = None) -> list[RunSummary]:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.started_at.desc())
            if until is not None:
                anchor = s.get(RunRow, until)
                if anchor is not None:
                    query = query.where(RunRow.started_at <= anchor.started_at)
            runs = list(s.scalars(query.limit(limit)))
            ids = [r.id for r in runs]
            tests = {
                (run_id, outcome): n
                for run_id, outcome, n in s.execute(
                    select(TestResultRow.run_id, TestResultRow.outcome, func.count())
                    .where(TestResultRow.run_id.in_(ids))
                    .group_by(TestResultRow.run_id, TestResultRow.outcome)
                )
            }
            probes = {
                (run_id, ok): n
                for run_id, ok, n in s.execute(
                    select(ProbeResultRow.run_id, ProbeResultRow.ok, func.count())
                    .where(ProbeResultRow.run_id.in_(ids))
                    .group_by(ProbeResultRow.run_id, ProbeResultRow.ok)
                )
            }
        return [
            RunSummary(
                run_id=r.id,
                started_at=aware(r.started_at) or r.started_at,
                verdict=r.verdict,
                passed=tests.get((r.id, "passed"), 0),
                executed=sum(tests.get((r.id, o), 0) for o in _EXECUTED),
                probes_ok=probes.get((r.id, True), 0),
                probes_total=probes.get((r.id, True), 0) + probes.get((r.id, False), 0),
            )
            for r in reversed(runs)
        ]

    def previous_run(self, run_id: str) -> RunRow | None:
        """The newest finished run that started before `run_id` (or the newest, if unknown)."""
        with self.session() as s:
            query = select(RunRow).where(RunRow.id != run_id, RunRow.verdict.is_not(None))
            anchor = s.get(RunRow, run_id)
            if anchor is not None:
                query = query.where(RunRow.started_at < anchor.started_at)
            return s.scalars(query.order_by(RunRow.started_at.desc()).limit(1)).first()

    def issue_row(self, tracker: str, fingerprint: str) -> IssueRow | None:
        with self.session() as s:
            query = select(IssueRow).where(
                IssueRow.tracker == tracker, IssueRow.fingerprint == fingerprint
            )
            return s.scalars(query).first()

    def issue_rows(self, tracker: str | None = None) -> list[IssueRow]:
        """The issue index, open first, newest first."""
        with self.session() as s:
            query = select(IssueRow)
            if tracker is not None:
                query = query.where(IssueRow.tracker == tracker)
            query = query.order_by(IssueRow.state.desc(), IssueRow.updated_at.desc())
            return list(s.scalars(query))

    def outbox_rows(
        self, tracker: str, *, pending: bool = True, fingerprint: str | None = None
    ) -> list[OutboxRow]:
        """Queued tracker operations in delivery order (all of them with pending=False)."""
        with self.session() as s:
            query = select(OutboxRow).where(OutboxRow.tracker == tracker)
            if pending:
                query = query.where(OutboxRow.delivered_at.is_(None))
            if fingerprint is not None:
                query = query.where(OutboxRow.fingerprint == fingerprint)
            return list(s.scalars(query.order_by(OutboxRow.id)))

    def last_cluster(self, fingerprint: str, *, not_run: str) -> ClusterRow | None:
        """The fingerprint's most recent cluster from another run: what changed since."""
        with self.session() as s:
            query = (
                select(ClusterRow)
                .where(ClusterRow.fingerprint == fingerprint, ClusterRow.run_id != not_run)
                .order_by(ClusterRow.id.desc())
                .limit(1)
            )
            return s.scalars(query).first()

    # ------------------------------------------------------------------ execution (owner: execute/)

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

    # ================================================================== collections

    def cached_collections(self, keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """{key: node ids} of the cached collections among `keys` (execute/listing.py)."""
        wanted = list(keys)
        if not wanted:
            return {}
        with self.session() as s:
            rows = s.execute(
                select(CollectionRow.key, CollectionRow.nodeids).where(
                    CollectionRow.key.in_(wanted)
                )
            )
            return {key: tuple(nodeids) for key, nodeids in rows}

    def save_collections(self, collections: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        """Keep {key: (file, node ids)}; older entries of the same files are dropped."""
        if not collections:
            return
        now = utcnow()
        with self.session() as s:
            files = {file for file, _ in collections.values()}
            s.execute(
                delete(CollectionRow).where(
                    CollectionRow.file.in_(files) | CollectionRow.key.in_(list(collections))
                )
            )
            s.add_all(
                CollectionRow(key=key, file=file, nodeids=list(nodeids), collected_at=now)
                for key, (file, nodeids) in collections.items()
            )

    # ================================================================== remediation
    # Named reads for remediate/ (guardrails: attempts and cooldown).

    def last_action_attempt(self, name: str) -> ActionRow | None:
        """The newest time this action really ran (done or failed), in any run: for cooldown."""
        with self.session() as s:
            query = (
                select(ActionRow)
                .where(ActionRow.name == name, ActionRow.status.in_(("done", "failed")))
                .order_by(ActionRow.started_at.desc(), ActionRow.id.desc())
                .limit(1)
            )
            return s.scalars(query).first()

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
    ) -> LabelRow:
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
        return row

    def labels(self) -> list[LabelRow]:
        """Every label, newest first (a newer verdict on the same failure wins)."""
        with self.session() as s:
            return list(s.scalars(select(LabelRow).order_by(LabelRow.id.desc())))


def migration_heads() -> set[str]:
    """The newest revision ids, read from the migration files' `revision =` lines.

    Importing Alembic costs more than the rest of a blocked run; reading the
    few files tells whether it is needed at all.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = re.search(r"^revision\s*=\s*[\"']([^\"']+)", source, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", source, re.M)
        if found:
            revisions.add(found.group(1))
        if down:
            revised.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return revisions - revised


def schema_is_current(engine: Engine) -> bool:
    """True when the database already stands at every migration head."""
    try:
        with engine.connect() as conn:
            versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        return False  # no table yet (a new store), or it cannot be read: let Alembic decide
    return bool(versions) and versions == migration_heads()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration with Alembic, one migrator at a time."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    with _migration_file_lock(engine), engine.begin() as conn:
        _migration_advisory_lock(conn)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets a reader (greenloop history) run beside a writer (a run in progress);
    # foreign keys make ON DELETE CASCADE real.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def _migration_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive flock on `<database>.lock` for SQLite; nothing for other databases.

    A separate file: locking the database file itself would fight SQLite's own locks.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database:
        yield
        return
    with open(f"{database}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _migration_advisory_lock(conn: Connection) -> None:
    """On PostgreSQL, wait for any other migrator; released when the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})


def _pid_alive(pid: int) -> bool:
    """Is the process there and not a zombie (killed, waiting for its parent to reap it)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
