"""The store: every run, probe, test result, cluster, issue and action, in SQL.

SQLite under `.greenloop/` beside the config by default; PostgreSQL when
`store.url` or GREENLOOP_STORE_URL is a postgresql:// URL. Alembic migrations
run automatically when the store is opened.

`Store` owns the engine and hands out one repository per stage, each returning
frozen records (`store/stored.py`), never ORM rows:

| attribute | module | tables | used by |
| --- | --- | --- | --- |
| `runs` | runs.py | runs, iterations | loop, reports, CLI |
| `results` | results.py | phases, test_results | execute, verify, reports |
| `probes` | probes.py | probe_results | gate |
| `triage` | triage.py | clusters, labels (+ history reads) | triage, trackers, CLI |
| `issues` | issues.py | issues, outbox | trackers |
| `remediation` | remediation.py | actions, deploys | remediate, deploy |
| `collections` | collections.py | collections | execute/listing |
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from greenloop.errors import UserError
from greenloop.store.collections import CollectionRepository
from greenloop.store.issues import IssueRepository
from greenloop.store.migrate import MIGRATIONS, migration_heads, schema_is_current, upgrade
from greenloop.store.probes import ProbeRepository
from greenloop.store.remediation import RemediationRepository
from greenloop.store.results import ResultRepository
from greenloop.store.runs import RunRepository
from greenloop.store.stored import RunSummary, aware
from greenloop.store.triage import TriageRepository
from greenloop.store.url import STORE_URL_ENV, store_url, store_url_problem, validate_store

__all__ = [
    "MIGRATIONS",
    "STORE_URL_ENV",
    "RunSummary",
    "Store",
    "aware",
    "migration_heads",
    "schema_is_current",
    "store_url",
    "store_url_problem",
    "upgrade",
    "validate_store",
]


class Store:
    """The engine, its session factory and the per-stage repositories over them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.runs = RunRepository(self.sessions)
        self.results = ResultRepository(self.sessions)
        self.probes = ProbeRepository(self.sessions)
        self.triage = TriageRepository(self.sessions)
        self.issues = IssueRepository(self.sessions)
        self.remediation = RemediationRepository(self.sessions)
        self.collections = CollectionRepository(self.sessions)

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
        """A raw transaction, for the dashboard's read-only queries (serve/) and tests;
        every stage goes through a repository instead."""
        with self.sessions.begin() as session:
            yield session


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets a reader (greenloop history) run beside a writer (a run in progress);
    # foreign keys make ON DELETE CASCADE real.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
