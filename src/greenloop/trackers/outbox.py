"""The outbox: tracker operations queued in the store, delivered in order, exactly once.

Every operation is written to the `outbox` table in the same transaction as the
issue index change that caused it (`store.issues.record`), then delivered. Delivery
claims one operation at a time (`store.issues.claim`: an `UPDATE ... WHERE
delivered_at IS NULL` as its transaction's first statement, so two runs never deliver
the same operation), calls the tracker with no transaction open, and records how it
went (`store.issues.settle`), the issue's key with it. A create first looks for the
fingerprint marker, a comment for its op marker, so an operation whose reply was lost
is not repeated when it is retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from greenloop.store import Store
from greenloop.store.issues import QueuedOp
from greenloop.store.stored import OutboxEntry, OutboxPayload, StoredIssue
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


def queued(*, op: str, payload: OutboxPayload, key: str) -> QueuedOp:
    """The operation to queue, its comment body ending in the op marker (found on retry)."""
    if op in ("comment", "reopen", "close") and payload.body:
        payload = replace(payload, body=payload.body.rstrip() + "\n\n" + op_marker(key) + "\n")
    return QueuedOp(op=op, payload=payload, key=key)


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
    for op_id in [entry.id for entry in store.issues.outbox(tracker.name)]:
        claimed = store.issues.claim(op_id)
        if claimed is None:
            continue  # delivered by an earlier sync
        entry, issue = claimed
        issue_id = issue.id if issue is not None else None
        try:
            remote = _apply(tracker, entry, issue)
        except TrackerUnavailable as exc:
            store.issues.settle(op_id, issue_id, last_error=exc.reason)
            error = exc
            break  # later operations wait: order matters (create before comment)
        except IssueRejected as exc:
            store.issues.settle(
                op_id, issue_id, last_error=f"dropped: {exc}", done=True, rejected=True
            )
            dropped += 1
            continue
        store.issues.settle(
            op_id,
            issue_id,
            last_error="",
            done=True,
            remote_key=remote.key if remote is not None else None,
            remote_location=remote.location if remote is not None else "",
        )
        delivered += 1
    pending = len(store.issues.outbox(tracker.name))
    return SyncResult(
        delivered=delivered,
        dropped=dropped,
        pending=pending,
        error=error.reason if error else None,
        retry_after=error.retry_after if error else None,
    )


def _apply(tracker: Tracker, row: OutboxEntry, issue: StoredIssue | None) -> RemoteIssue | None:
    payload = row.payload
    if row.op == "create":
        # The reply to an earlier attempt may have been lost after the tracker created it.
        existing = tracker.find(row.fingerprint)
        if existing is not None:
            return existing
        return tracker.create(payload.title or "", payload.body or "", list(payload.labels or ()))
    if issue is None or not issue.key:
        raise IssueRejected(f"no issue to {row.op}: its create was dropped")
    key = issue.key
    if row.op == "reopen":
        tracker.reopen(key)
        _comment_once(tracker, key, payload.body or "", row.idempotency_key)
    elif row.op == "comment":
        _comment_once(tracker, key, payload.body or "", row.idempotency_key)
    elif row.op == "close":
        _comment_once(tracker, key, payload.body or "", row.idempotency_key)
        tracker.close(key)
    elif row.op == "labels":
        tracker.set_labels(key, list(payload.labels or ()))
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
