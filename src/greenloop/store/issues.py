"""The tracker index (one issue per tracker and fingerprint) and its outbox.

Every tracker operation is written to `outbox` in the same transaction as the index
change that caused it (`record`, `flag_needs_person`), then delivered one at a time:
`claim` marks an attempt as its transaction's first statement (the row lock on
PostgreSQL, the write lock on SQLite), so two runs never deliver the same operation;
`settle` records how the delivery went. Trackers decide *what* to queue; this module
only keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from greenloop.errors import UserError
from greenloop.records import utcnow
from greenloop.retry import retry_transaction
from greenloop.store.base import Repository
from greenloop.store.schema import IssueRow, OutboxRow
from greenloop.store.stored import OutboxEntry, OutboxPayload, StoredIssue, view


@dataclass(frozen=True, slots=True)
class QueuedOp:
    """A tracker operation to queue: `op` (create | comment | reopen | close | labels),
    what it sends, and its idempotency key (unique, at most 128 characters)."""

    op: str
    payload: OutboxPayload
    key: str


@dataclass(frozen=True, slots=True)
class IssueChange:
    """The index row as it should be after a decision, and the operation it queues."""

    state: str  # open | closed
    occurrences: int
    green_streak: int
    last_run_id: str | None
    queue: QueuedOp | None = None


@dataclass(frozen=True, slots=True)
class RecordedIssue:
    """What `record` did: the issue's title and the ids of the operations it queued."""

    title: str
    op_ids: tuple[int, ...]


class IssueRepository(Repository):
    """The `issues` and `outbox` tables."""

    # ------------------------------------------------------------------ the index

    def get(self, tracker: str, fingerprint: str) -> StoredIssue | None:
        with self.session() as s:
            row = _issue(s, tracker, fingerprint)
            return view(StoredIssue, row) if row is not None else None

    def index(self, tracker: str | None = None) -> list[StoredIssue]:
        """The issue index of one tracker (every tracker's when None), open first, newest first."""
        with self.session() as s:
            query = select(IssueRow)
            if tracker is not None:
                query = query.where(IssueRow.tracker == tracker)
            query = query.order_by(IssueRow.state.desc(), IssueRow.updated_at.desc())
            return [view(StoredIssue, r) for r in s.scalars(query)]

    def first_location(self, tracker: str) -> str | None:
        """Where the tracker's first-indexed issue lives (a path for local issues), if any."""
        with self.session() as s:
            return s.scalars(
                select(IssueRow.location)
                .where(IssueRow.tracker == tracker, IssueRow.location != "")
                .order_by(IssueRow.id)
                .limit(1)
            ).first()

    def record(
        self,
        tracker: str,
        fingerprint: str,
        *,
        title: str,
        category: str | None,
        decide: Callable[[StoredIssue | None], IssueChange],
    ) -> RecordedIssue:
        """Decide against the current index row and write row + outbox op in one transaction.

        `decide` gets the row as it stands (None for a new fingerprint) inside the
        transaction. A run that loses the race to insert the row (UNIQUE tracker +
        fingerprint) decides again against the winner's row, so it comments instead of
        creating a second issue. UserError when SQLite stays locked through 8 attempts.
        """

        def once() -> RecordedIssue:
            with self.session() as s:
                row = _issue(s, tracker, fingerprint)
                change = decide(view(StoredIssue, row) if row is not None else None)
                now = utcnow()
                if row is None:
                    row = IssueRow(
                        tracker=tracker,
                        fingerprint=fingerprint,
                        title=title,
                        state="open",
                        location="",
                        category=category or "unknown",
                        occurrences=1,
                        green_streak=0,
                        needs_person=False,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(row)
                    s.flush()  # the claim: IntegrityError if another run got here first
                row.state = change.state
                row.occurrences = change.occurrences
                row.green_streak = change.green_streak
                row.last_run_id = change.last_run_id
                row.updated_at = now
                if title and not row.title:
                    row.title = title
                ops: tuple[int, ...] = ()
                if change.queue is not None:
                    ops = (_enqueue(s, tracker, fingerprint, change.queue),)
                return RecordedIssue(row.title, ops)

        def give_up() -> NoReturn:
            raise UserError(
                f"issue index: could not record {fingerprint} (store busy); rerun later"
            )

        return retry_transaction(
            once, conflict=_conflict, wait=_conflict_wait, attempts=8, give_up=give_up
        )

    def flag_needs_person(
        self, tracker: str, fingerprint: str, queue: Callable[[StoredIssue], QueuedOp]
    ) -> bool:
        """Flag an indexed issue as needing a person and queue `queue(issue)` with it.

        False (nothing written) when the issue is not indexed or already flagged.
        """
        with self.session() as s:
            row = _issue(s, tracker, fingerprint)
            if row is None or row.needs_person:
                return False
            row.needs_person = True
            _enqueue(s, tracker, fingerprint, queue(view(StoredIssue, row)))
            return True

    # ------------------------------------------------------------------ the outbox

    def outbox(
        self, tracker: str, *, pending: bool = True, fingerprint: str | None = None
    ) -> list[OutboxEntry]:
        """Queued tracker operations in delivery order (all of them with pending=False)."""
        with self.session() as s:
            query = select(OutboxRow).where(OutboxRow.tracker == tracker)
            if pending:
                query = query.where(OutboxRow.delivered_at.is_(None))
            if fingerprint is not None:
                query = query.where(OutboxRow.fingerprint == fingerprint)
            return [view(OutboxEntry, r) for r in s.scalars(query.order_by(OutboxRow.id))]

    def pending_counts(self) -> dict[tuple[str, str], int]:
        """{(tracker, fingerprint): undelivered operations} over every tracker."""
        pending: dict[tuple[str, str], int] = {}
        with self.session() as s:
            for r in s.scalars(select(OutboxRow).where(OutboxRow.delivered_at.is_(None))):
                pending[(r.tracker, r.fingerprint)] = pending.get((r.tracker, r.fingerprint), 0) + 1
        return pending

    def claim(self, op_id: int) -> tuple[OutboxEntry, StoredIssue | None] | None:
        """Count a delivery attempt of an undelivered operation: it and its issue's row,
        or None when it was delivered meanwhile. The transaction ends before returning."""
        with self.session() as s:
            claimed = s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == op_id, OutboxRow.delivered_at.is_(None))
                .values(attempts=OutboxRow.attempts + 1)
            ).rowcount  # type: ignore[attr-defined]
            if not claimed:
                return None
            row = s.get(OutboxRow, op_id)
            assert row is not None
            issue = _issue(s, row.tracker, row.fingerprint)
            return view(OutboxEntry, row), (view(StoredIssue, issue) if issue else None)

    def settle(
        self,
        op_id: int,
        issue_id: int | None,
        *,
        last_error: str,
        done: bool = False,
        rejected: bool = False,
        remote_key: str | None = None,
        remote_location: str = "",
    ) -> None:
        """Record how one delivery went, in its own short transaction: `done` marks it
        delivered, `rejected` flags its issue as needing a person, `remote_key` is the
        issue the tracker created or found."""
        with self.session() as s:
            row = s.get(OutboxRow, op_id)
            if row is None:
                return
            row.last_error = last_error
            if done:
                row.delivered_at = utcnow()
            target = s.get(IssueRow, issue_id) if issue_id is not None else None
            if target is not None and rejected:
                target.needs_person = True
            if target is not None and remote_key is not None:
                target.key = remote_key
                target.location = remote_location
                target.updated_at = utcnow()


def _issue(s: Session, tracker: str, fingerprint: str) -> IssueRow | None:
    query = select(IssueRow).where(IssueRow.tracker == tracker, IssueRow.fingerprint == fingerprint)
    return s.scalars(query).first()


def _enqueue(s: Session, tracker: str, fingerprint: str, queued: QueuedOp) -> int:
    """Queue one operation inside the caller's transaction (with its index change); its id."""
    row = OutboxRow(
        tracker=tracker,
        fingerprint=fingerprint,
        op=queued.op,
        payload=queued.payload.to_json(),
        idempotency_key=queued.key,
        created_at=utcnow(),
        attempts=0,
        last_error="",
    )
    s.add(row)
    s.flush()
    return row.id


def _conflict(error: BaseException) -> bool:
    """Another writer got there first: a lost race for a unique row, or SQLite's lock."""
    if isinstance(error, IntegrityError):
        return True
    return isinstance(error, OperationalError) and "locked" in str(error).lower()


def _conflict_wait(attempt: int, error: BaseException) -> float:
    """Decide again at once after a lost race; wait a little longer each time for a lock."""
    return 0.0 if isinstance(error, IntegrityError) else 0.05 * attempt
