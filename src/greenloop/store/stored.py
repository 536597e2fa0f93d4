"""What the store hands back: frozen records, never ORM rows.

Each `Stored*` record mirrors one table's columns (datetimes are timezone-aware, UTC
when the database kept none) and is built by `view(cls, row)` inside the session that
read the row, so no caller ever touches a session, a lazy load or a detached row.
`ResumeProgress` and `OutboxPayload` are the typed forms of the two JSON columns; their
`to_json` writes exactly the shape earlier versions stored, so no data migration is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from greenloop.records import PhaseResult
from greenloop.snapshot import phase_from_json, phase_to_json

T = TypeVar("T")


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we stored was UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ResumeProgress:
    """What --resume needs of a run: its iteration and the phases it completed (in order).

    Stored in `runs.progress` as {"iteration": n, "phases": [phase JSON], "resumed_by": id}.
    """

    iteration: int = 1
    phases: tuple[PhaseResult, ...] = ()
    resumed_by: str | None = None  # the run that took this one over

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "iteration": self.iteration,
            "phases": [phase_to_json(p) for p in self.phases],
        }
        if self.resumed_by is not None:
            data["resumed_by"] = self.resumed_by
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ResumeProgress | None:
        if not data:
            return None
        return cls(
            iteration=int(data.get("iteration", 1)),
            phases=tuple(phase_from_json(p) for p in data.get("phases", ())),
            resumed_by=data.get("resumed_by"),
        )


@dataclass(frozen=True, slots=True)
class OutboxPayload:
    """What a queued tracker operation sends: a create has all three, a comment, reopen or
    close a body, a labels operation labels. Stored as a JSON object of the fields set."""

    title: str | None = None
    body: str | None = None
    labels: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.title is not None:
            data["title"] = self.title
        if self.body is not None:
            data["body"] = self.body
        if self.labels is not None:
            data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> OutboxPayload:
        data = data or {}
        labels = data.get("labels")
        return cls(
            title=data.get("title"),
            body=data.get("body"),
            labels=tuple(labels) if labels is not None else None,
        )


@dataclass(frozen=True, slots=True)
class StoredRun:
    id: str
    started_at: datetime
    finished_at: datetime | None
    status: str  # running | finished | interrupted | crashed | resumed
    verdict: str | None
    exit_code: int | None
    environment: str
    revision: str | None
    focus: str
    command_line: str
    config_path: str
    worklog: str | None
    json_report: str | None
    pid: int | None
    host: str
    progress: ResumeProgress | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run's headline numbers, for the trend line."""

    run_id: str
    started_at: datetime
    verdict: str | None
    passed: int
    executed: int  # tests that ran to an outcome (not skipped, not blocked)
    probes_ok: int
    probes_total: int


@dataclass(frozen=True, slots=True)
class StoredPhase:
    id: int
    run_id: str
    iteration: int
    name: str
    status: str
    duration_s: float
    command: str
    blocked_by: str | None
    note: str
    completed_at: datetime


@dataclass(frozen=True, slots=True)
class StoredTest:
    """One test's result as kept: outcome and category are the enums' values."""

    id: int
    run_id: str
    iteration: int
    phase: str
    nodeid: str
    outcome: str
    duration_s: float
    category: str | None
    cluster_id: str | None
    fingerprint: str | None
    message: str
    revision: str | None
    reruns: tuple[str, ...]
    real: bool
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class StoredProbe:
    id: int
    run_id: str | None
    iteration: int | None
    component: str
    name: str
    kind: str
    target: str
    ok: bool
    latency_ms: float | None
    detail: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCluster:
    id: int
    run_id: str
    iteration: int
    cluster_id: str
    fingerprint: str
    category: str
    confidence: float
    title: str
    reason: str
    count: int
    impact_usd: float
    root_cause: dict[str, Any]
    tests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoredAction:
    id: int
    run_id: str
    iteration: int
    name: str
    kind: str
    status: str
    detail: str
    started_at: datetime
    duration_s: float
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class StoredIssue:
    """One row of the tracker index: at most one per (tracker, fingerprint)."""

    id: int
    tracker: str
    fingerprint: str
    key: str | None  # the tracker's id once created
    title: str
    state: str  # open | closed
    location: str
    category: str
    occurrences: int
    green_streak: int
    needs_person: bool
    created_at: datetime
    updated_at: datetime
    last_run_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One queued tracker operation."""

    id: int
    tracker: str
    fingerprint: str
    op: str  # create | comment | reopen | close | labels
    payload: OutboxPayload
    idempotency_key: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str


@dataclass(frozen=True, slots=True)
class StoredLabel:
    id: int
    target: str
    target_kind: str  # cluster | test | unknown
    category: str
    note: str
    text: str
    labelled_by: str
    labelled_at: datetime


_CONVERT: dict[str, Any] = {
    "progress": ResumeProgress.from_json,
    "payload": OutboxPayload.from_json,
    "reruns": lambda v: tuple(v or ()),
    "tests": lambda v: tuple(v or ()),
    "root_cause": lambda v: dict(v or {}),
}


def view(cls: type[T], row: object) -> T:
    """The frozen record of `row` (an ORM row with the same column names as `cls`)."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        if isinstance(value, datetime):
            value = aware(value)
        elif f.name in _CONVERT:
            value = _CONVERT[f.name](value)
        values[f.name] = value
    return cls(**values)
