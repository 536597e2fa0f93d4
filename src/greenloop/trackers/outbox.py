"""The outbox: tracker operations queued in the store, delivered in order, exactly once.

Every operation is written to the `outbox` table in the same transaction as the
issue index change that caused it, then delivered. Delivery claims one row at a
time with `UPDATE ... WHERE delivered_at IS NULL` as the transaction's first
statement, which takes the row lock (PostgreSQL) or the write lock (SQLite) so two
runs never deliver the same operation, calls the tracker, and marks the row
delivered in that same transaction as it records the issue's key. A create first
looks for the fingerprint marker, a comment for its op marker, so an operation
whose reply was lost is not repeated when it is retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from greenloop.records import utcnow
from greenloop.store import Store
from greenloop.store.schema import IssueRow, OutboxRow
from greenloop.trackers.base import (
    IssueRejected,
    RemoteIssue,
    Tracker,
    TrackerUnavailable,
    op_marker,
)


@dataclass(frozen=True)
class SyncResult:
    """What one delivery pass did."""

    delivered: int = 0
    dropped: int = 0
    pending: int = 0
    error: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        parts = [f"{self.delivered} delivered"]
        if self.dropped:
            parts.append(f"{self.dropped} dropped (see `greenloop issues list`)")
        parts.append(f"{self.pending} still queued")
        text = ", ".join(parts)
        if self.error:
            text += f"; tracker unavailable: {self.error}"
        return text


def enqueue(
    session: Session,
    *,
    tracker: str,
    fingerprint: str,
    op: str,
    payload: dict[str, Any],
    key: str,
) -> OutboxRow:
    """Queue one operation inside the caller's transaction (with its index change)."""
    if op in ("comment", "reopen", "close") and payload.get("body"):
        payload = {**payload, "body": payload["body"].rstrip() + "\n\n" + op_marker(key) + "\n"}
    row = OutboxRow(
        tracker=tracker,
        fingerprint=fingerprint,
        op=op,
        payload=payload,
        idempotency_key=key,
        created_at=utcnow(),
        attempts=0,
        last_error="",
    )
    session.add(row)
    session.flush()
    return row


def deliver(tracker: Tracker, store: Store) -> SyncResult:
    """Deliver this tracker's pending operations in order; stop at the first outage.

    One process delivers at a time (`Store.exclusive`: exactly once, in order). No database
    transaction is open during a tracker call, so a slow tracker never holds the store's
    write lock and a concurrent run's writes go on; every call has a total deadline.
    """
    lock = f"outbox-{hashlib.sha256(tracker.name.encode()).hexdigest()[:12]}"
    with store.exclusive(lock):
        return _deliver(tracker, store)


def _deliver(tracker: Tracker, store: Store) -> SyncResult:
    delivered = dropped = 0
    error: TrackerUnavailable | None = None
    for op_id in [row.id for row in store.outbox_rows(tracker.name)]:
        with store.session() as s:
            claimed = s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == op_id, OutboxRow.delivered_at.is_(None))
                .values(attempts=OutboxRow.attempts + 1)
            ).rowcount  # type: ignore[attr-defined]
            if not claimed:
                continue  # delivered by an earlier sync
            row = s.get(OutboxRow, op_id)
            assert row is not None
            issue = s.scalars(
                select(IssueRow).where(
                    IssueRow.tracker == row.tracker, IssueRow.fingerprint == row.fingerprint
                )
            ).first()
            s.expunge_all()  # plain values from here on; the transaction ends now
        try:
            remote = _apply(tracker, row, issue)
        except TrackerUnavailable as exc:
            _settle(store, op_id, issue, last_error=exc.reason)
            error = exc
            break  # later operations wait: order matters (create before comment)
        except IssueRejected as exc:
            _settle(store, op_id, issue, last_error=f"dropped: {exc}", done=True, rejected=True)
            dropped += 1
            continue
        _settle(store, op_id, issue, last_error="", done=True, remote=remote)
        delivered += 1
    pending = len(store.outbox_rows(tracker.name))
    return SyncResult(
        delivered=delivered,
        dropped=dropped,
        pending=pending,
        error=error.reason if error else None,
        retry_after=error.retry_after if error else None,
    )


def _settle(
    store: Store,
    op_id: int,
    issue: IssueRow | None,
    *,
    last_error: str,
    done: bool = False,
    rejected: bool = False,
    remote: RemoteIssue | None = None,
) -> None:
    """Record how one delivery went, in its own short transaction."""
    with store.session() as s:
        row = s.get(OutboxRow, op_id)
        if row is None:
            return
        row.last_error = last_error
        if done:
            row.delivered_at = utcnow()
        target = s.get(IssueRow, issue.id) if issue is not None else None
        if target is not None and rejected:
            target.needs_person = True
        if target is not None and remote is not None:
            target.key = remote.key
            target.location = remote.location
            target.updated_at = utcnow()


def _apply(tracker: Tracker, row: OutboxRow, issue: IssueRow | None) -> RemoteIssue | None:
    payload = row.payload
    if row.op == "create":
        # The reply to an earlier attempt may have been lost after the tracker created it.
        existing = tracker.find(row.fingerprint)
        if existing is not None:
            return existing
        return tracker.create(payload["title"], payload["body"], payload.get("labels", []))
    if issue is None or not issue.key:
        raise IssueRejected(f"no issue to {row.op}: its create was dropped")
    key = issue.key
    if row.op == "reopen":
        tracker.reopen(key)
        _comment_once(tracker, key, payload.get("body", ""), row.idempotency_key)
    elif row.op == "comment":
        _comment_once(tracker, key, payload["body"], row.idempotency_key)
    elif row.op == "close":
        _comment_once(tracker, key, payload.get("body", ""), row.idempotency_key)
        tracker.close(key)
    elif row.op == "labels":
        tracker.set_labels(key, payload["labels"])
    else:
        raise IssueRejected(f"unknown outbox operation {row.op!r}")
    return None


def _comment_once(tracker: Tracker, key: str, body: str, idempotency_key: str) -> None:
    if not body:
        return
    marker = op_marker(idempotency_key)
    if any(marker in existing for existing in tracker.comments(key)):
        return
    tracker.comment(key, body)
