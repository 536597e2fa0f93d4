"""The store's tables (SQLAlchemy 2 declarative). Changes go through an Alembic migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed: every list of runs (history, the dashboard's pages) is newest first.
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | finished | interrupted | crashed | resumed
    status: Mapped[str] = mapped_column(String(16), default="running")
    verdict: Mapped[str | None] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    environment: Mapped[str] = mapped_column(String(200), default="")
    revision: Mapped[str | None] = mapped_column(String(200))
    focus: Mapped[str] = mapped_column(String(200), default="all")
    command_line: Mapped[str] = mapped_column(Text, default="")
    config_path: Mapped[str] = mapped_column(Text, default="")
    worklog: Mapped[str | None] = mapped_column(Text)
    json_report: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200), default="")
    # JSON-able snapshot of the last completed phase, so --resume can continue.
    progress: Mapped[dict | None] = mapped_column(JSON)


class IterationRow(Base):
    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)


class PhaseRow(Base):
    __tablename__ = "phases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    command: Mapped[str] = mapped_column(Text, default="")
    blocked_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProbeResultRow(Base):
    __tablename__ = "probe_results"
    __table_args__ = (Index("ix_probe_component_time", "component", "checked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    iteration: Mapped[int | None] = mapped_column(Integer)
    component: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TestResultRow(Base):
    __tablename__ = "test_results"
    __table_args__ = (Index("ix_test_nodeid_time", "nodeid", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(200))
    nodeid: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    category: Mapped[str | None] = mapped_column(String(32))
    cluster_id: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[str | None] = mapped_column(String(200))
    reruns: Mapped[list | None] = mapped_column(JSON)
    real: Mapped[bool] = mapped_column(Boolean, default=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClusterRow(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    cluster_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    title: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer)
    impact_usd: Mapped[float] = mapped_column(Float, default=0.0)
    root_cause: Mapped[dict] = mapped_column(JSON)
    tests: Mapped[list] = mapped_column(JSON)


class IssueRow(Base):
    """The tracker index: at most one issue per (tracker, fingerprint), open or closed."""

    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("tracker", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tracker: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(200))  # tracker's id once created
    title: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    location: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32), default="unknown")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    green_streak: Mapped[int] = mapped_column(Integer, default=0)
    needs_person: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[str | None] = mapped_column(String(64))


class OutboxRow(Base):
    """Tracker operations waiting for delivery, in order, exactly once."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tracker: Mapped[str] = mapped_column(String(200), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(16))  # create | comment | reopen | close | label
    payload: Mapped[dict] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class ActionRow(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    fingerprint: Mapped[str | None] = mapped_column(String(64))


class DeployRow(Base):
    __tablename__ = "deploys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    revision_before: Mapped[str | None] = mapped_column(String(200))
    revision_after: Mapped[str | None] = mapped_column(String(200))
    deployed: Mapped[bool] = mapped_column(Boolean)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CollectionRow(Base):
    """A test file's node ids as pytest collected them, under a key over its content.

    The key (execute/listing.py) covers the file, the conftest.py files above it
    and the filtering pytest arguments; a blocked phase names its tests from here
    without importing the suite.
    """

    __tablename__ = "collections"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    file: Mapped[str] = mapped_column(Text, index=True)
    nodeids: Mapped[list] = mapped_column(JSON)
    collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LabelRow(Base):
    """A person's verdict on a cluster or a test (`greenloop label`): what triage learns from.

    `text` is the labelled failure as stored at labelling time (messages, redacted), the
    signature later failures are compared with.
    """

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(Text)  # cluster id or test node id, as given
    target_kind: Mapped[str] = mapped_column(String(16))  # cluster | test
    category: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    labelled_by: Mapped[str] = mapped_column(String(200), default="")
    labelled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
