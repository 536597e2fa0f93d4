"""Filing: one issue per problem (cluster fingerprint), kept current as it comes and goes.

`file_issues` is the loop's entry point: deliver what earlier runs queued, decide
per fingerprint (lifecycle.py, pure), record the decision and queue its operation
in one transaction, then deliver. `sync_outbox` is `greenloop issues sync`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from greenloop.errors import UserError
from greenloop.records import (
    Cluster,
    IndexEntry,
    IssueAction,
    IssueRef,
    TestResult,
    Verdict,
    utcnow,
)
from greenloop.redact import Redactor, redactor_for
from greenloop.store import Store
from greenloop.store.schema import IssueRow
from greenloop.trackers import LocalTracker, resolve_tracker
from greenloop.trackers.base import Tracker
from greenloop.trackers.body import (
    IssueContext,
    close_comment,
    issue_body,
    issue_labels,
    issue_title,
    needs_person_comment,
    occurrence_comment,
    priority_of,
)
from greenloop.trackers.lifecycle import Decision, IndexState, Op, decide
from greenloop.trackers.outbox import SyncResult, deliver, enqueue

if TYPE_CHECKING:
    from greenloop.config import Config

__all__ = [
    "SyncResult",
    "build_tracker",
    "file_issues",
    "idempotency_key",
    "mark_needs_person",
    "sync_outbox",
]


def build_tracker(config: Config, out_dir: Path, store: Store | None = None) -> Tracker:
    """The configured tracker; a mistake in [tracker] is one ConfigError naming the key.

    Local issues live with the store: once a store holds local issues, their folder is
    where the next ones go, whatever `--out` a later run is given, so keys stay unique
    per store and updates find their files.
    """
    kind, options = resolve_tracker(config)
    if kind is LocalTracker and options.dir is None and store is not None:
        home = local_issue_folder(store)
        if home is not None:
            return LocalTracker(home)
    tracker: Tracker = kind.build(options, out_dir=Path(out_dir))
    return tracker


def local_issue_folder(store: Store) -> Path | None:
    """The folder of the local issues this store already indexes (the first one's), if any."""
    with store.session() as s:
        location = s.scalars(
            select(IssueRow.location)
            .where(IssueRow.tracker == "local", IssueRow.location != "")
            .order_by(IssueRow.id)
            .limit(1)
        ).first()
    return Path(location).parent if location else None


# --------------------------------------------------------------------------- filing


@dataclass(frozen=True)
class _Planned:
    fingerprint: str
    title: str
    decision: Decision
    op_ids: tuple[int, ...]


def file_issues(
    clusters: Sequence[Cluster],
    *,
    config: Config,
    store: Store,
    run_id: str,
    verdict: Verdict,
    out_dir: Path,
    command_line: str = "",
    revision: str | None = None,
    index: Sequence[IndexEntry] = (),
    environment: str | None = None,
    tests: Sequence[TestResult] = (),
    redactor: Redactor | None = None,
) -> list[IssueRef]:
    """Create, comment on, reopen or close one issue per cluster fingerprint.

    Pending operations from earlier runs go first, in order. Operations the tracker
    cannot take now (down, slow, rate-limited) stay queued: their IssueRef says `queued`.
    """
    tracker = build_tracker(config, out_dir, store)
    redactor = redactor or redactor_for(config)
    ctx = IssueContext(
        run_id=run_id,
        environment=environment or config.environment.name,
        revision=revision,
        command_line=command_line,
    )
    by_nodeid = {t.nodeid: t for t in tests}
    deliver(tracker, store)
    planned: list[_Planned] = []
    present: dict[str, Cluster] = {}
    for cluster in clusters:
        present.setdefault(cluster.fingerprint, cluster)
    for cluster in present.values():
        planned.append(
            _plan(
                store,
                tracker.name,
                cluster,
                ctx=ctx,
                verdict=verdict,
                close_after=config.tracker.close_after_green,
                labels=issue_labels(cluster, config.tracker.labels, priority_of(cluster, index)),
                tests=by_nodeid,
                priority=priority_of(cluster, index),
                redactor=redactor,
            )
        )
    for row in store.issue_rows(tracker.name):
        if row.fingerprint not in present and row.state == "open":
            plan = _plan_absent(
                store,
                tracker.name,
                row.fingerprint,
                run_id,
                verdict,
                config.tracker.close_after_green,
                redactor,
            )
            if plan.decision.op is not Op.NONE:
                planned.append(plan)
    deliver(tracker, store)
    return [_ref(store, tracker.name, p) for p in planned]


def _plan(
    store: Store,
    tracker: str,
    cluster: Cluster,
    *,
    ctx: IssueContext,
    verdict: Verdict,
    close_after: int,
    labels: list[str],
    tests: dict[str, TestResult],
    priority: int | None,
    redactor: Redactor,
) -> _Planned:
    title = redactor.redact(issue_title(cluster))
    previous = store.last_cluster(cluster.fingerprint, not_run=ctx.run_id)
    previous_revision = None
    if previous is not None:
        run = store.run(previous.run_id)
        previous_revision = run.revision if run else None

    def payload(op: Op, occurrences: int) -> dict[str, Any]:
        if op is Op.CREATE:
            body = issue_body(cluster, ctx, tests=tests, priority=priority)
            return {"title": title, "body": redactor.redact(body), "labels": labels}
        body = occurrence_comment(
            cluster,
            ctx,
            occurrences=occurrences,
            previous_tests=list(previous.tests) if previous else None,
            previous_revision=previous_revision,
            reopened=op is Op.REOPEN,
        )
        return {"body": redactor.redact(body)}

    return _record(
        store,
        tracker,
        cluster.fingerprint,
        title,
        cluster.category.value,
        lambda current: decide(
            current, present=True, run_id=ctx.run_id, verdict=verdict, close_after=close_after
        ),
        payload,
    )


def _plan_absent(
    store: Store,
    tracker: str,
    fingerprint: str,
    run_id: str,
    verdict: Verdict,
    close_after: int,
    redactor: Redactor,
) -> _Planned:
    def payload(op: Op, _occurrences: int) -> dict[str, Any]:
        return {"body": redactor.redact(close_comment(run_id, close_after))}

    return _record(
        store,
        tracker,
        fingerprint,
        "",
        None,
        lambda current: decide(
            current, present=False, run_id=run_id, verdict=verdict, close_after=close_after
        ),
        payload,
    )


def _record(
    store: Store,
    tracker: str,
    fingerprint: str,
    title: str,
    category: str | None,
    decide_for: Any,
    payload_for: Any,
) -> _Planned:
    """Decide against the current index row and write row + outbox op in one transaction.

    A run that loses the race to insert the row (UNIQUE tracker+fingerprint) retries
    against the winner's row, so it comments instead of creating a second issue.
    """
    for attempt in range(8):
        try:
            with store.session() as s:
                row = s.scalars(
                    select(IssueRow).where(
                        IssueRow.tracker == tracker, IssueRow.fingerprint == fingerprint
                    )
                ).first()
                current = (
                    IndexState(row.state, row.occurrences, row.green_streak, row.last_run_id)
                    if row
                    else None
                )
                decision: Decision = decide_for(current)
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
                    s.flush()  # the claim: raises IntegrityError if another run got here first
                row.state = decision.state
                row.occurrences = decision.occurrences
                row.green_streak = decision.green_streak
                row.last_run_id = decision.last_run_id
                row.updated_at = now
                if title and not row.title:
                    row.title = title
                ops: tuple[int, ...] = ()
                if decision.op is not Op.NONE:
                    op = enqueue(
                        s,
                        tracker=tracker,
                        fingerprint=fingerprint,
                        op=decision.op.value,
                        payload=payload_for(decision.op, decision.occurrences),
                        key=idempotency_key(
                            tracker,
                            fingerprint,
                            decision.last_run_id or "",
                            decision.op.value,
                            f"{decision.occurrences}/{decision.green_streak}",
                        ),
                    )
                    ops = (op.id,)
                return _Planned(fingerprint, row.title, decision, ops)
        except IntegrityError:
            continue  # lost the race for the row: decide again against the winner's
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            time.sleep(0.05 * (attempt + 1))  # SQLite: another writer holds the lock
    raise UserError(f"issue index: could not record {fingerprint} (store busy); rerun later")


def _ref(store: Store, tracker: str, plan: _Planned) -> IssueRef:
    row = store.issue_row(tracker, plan.fingerprint)
    pending = bool(plan.op_ids) and any(
        r.id in plan.op_ids for r in store.outbox_rows(tracker, fingerprint=plan.fingerprint)
    )
    return IssueRef(
        key=(row.key if row and row.key else ""),
        title=plan.title or (row.title if row else ""),
        action=IssueAction.QUEUED if pending else plan.decision.op.action,
        location=(row.location if row and row.location else "queued in the store's outbox"),
        fingerprint=plan.fingerprint,
    )


def idempotency_key(*parts: str) -> str:
    """Stable, short (the column holds 128) and unique per intended operation."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]
    return f"gl-{digest}"


def sync_outbox(config: Config, store: Store, out_dir: Path) -> SyncResult:
    """`greenloop issues sync`: deliver everything queued for the configured tracker."""
    return deliver(build_tracker(config, out_dir, store), store)


def mark_needs_person(
    clusters: Sequence[Cluster], *, config: Config, store: Store, out_dir: Path, run_id: str = ""
) -> None:
    """The loop is stuck on these problems: flag their issues and say so on them."""
    tracker = build_tracker(config, out_dir, store)
    redactor = redactor_for(config)
    for cluster in clusters:
        with store.session() as s:
            row = s.scalars(
                select(IssueRow).where(
                    IssueRow.tracker == tracker.name, IssueRow.fingerprint == cluster.fingerprint
                )
            ).first()
            if row is None or row.needs_person:
                continue
            row.needs_person = True
            enqueue(
                s,
                tracker=tracker.name,
                fingerprint=cluster.fingerprint,
                op="comment",
                payload={"body": redactor.redact(needs_person_comment(run_id or "?"))},
                key=idempotency_key(
                    tracker.name, cluster.fingerprint, "needs-person", str(row.occurrences)
                ),
            )
    deliver(tracker, store)
