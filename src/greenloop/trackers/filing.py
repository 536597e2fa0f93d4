"""Filing: one issue per problem (cluster fingerprint), kept current as it comes and goes.

`file_issues` is the loop's entry point: deliver what earlier runs queued, decide
per fingerprint (lifecycle.py, pure), record the decision and queue its operation
in one transaction, then deliver. `sync_outbox` is `greenloop issues sync`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop.records import (
    Cluster,
    IndexEntry,
    IssueAction,
    IssueRef,
    TestResult,
    Verdict,
)
from greenloop.redact import Redactor, redactor_for
from greenloop.store import Store
from greenloop.store.issues import IssueChange, QueuedOp
from greenloop.store.stored import OutboxPayload, StoredIssue
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
from greenloop.trackers.outbox import SyncResult, deliver, queued

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
    location = store.issues.first_location("local")
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
    for row in store.issues.index(tracker.name):
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
    previous = store.triage.last_cluster(cluster.fingerprint, not_run=ctx.run_id)
    previous_revision = None
    if previous is not None:
        run = store.runs.run(previous.run_id)
        previous_revision = run.revision if run else None

    def payload(op: Op, occurrences: int) -> OutboxPayload:
        if op is Op.CREATE:
            body = issue_body(cluster, ctx, tests=tests, priority=priority)
            return OutboxPayload(title=title, body=redactor.redact(body), labels=tuple(labels))
        body = occurrence_comment(
            cluster,
            ctx,
            occurrences=occurrences,
            previous_tests=list(previous.tests) if previous else None,
            previous_revision=previous_revision,
            reopened=op is Op.REOPEN,
        )
        return OutboxPayload(body=redactor.redact(body))

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
    def payload(op: Op, _occurrences: int) -> OutboxPayload:
        return OutboxPayload(body=redactor.redact(close_comment(run_id, close_after)))

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
    decide_for: Callable[[IndexState | None], Decision],
    payload_for: Callable[[Op, int], OutboxPayload],
) -> _Planned:
    """Decide against the current index row; the store writes row + outbox op together."""
    decisions: list[Decision] = []

    def change(row: StoredIssue | None) -> IssueChange:
        current = (
            IndexState(row.state, row.occurrences, row.green_streak, row.last_run_id)
            if row
            else None
        )
        decision = decide_for(current)
        decisions.append(decision)  # the last one is the one kept (a lost race decides again)
        op = None
        if decision.op is not Op.NONE:
            op = queued(
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
        return IssueChange(
            decision.state, decision.occurrences, decision.green_streak, decision.last_run_id, op
        )

    recorded = store.issues.record(
        tracker, fingerprint, title=title, category=category, decide=change
    )
    return _Planned(fingerprint, recorded.title, decisions[-1], recorded.op_ids)


def _ref(store: Store, tracker: str, plan: _Planned) -> IssueRef:
    row = store.issues.get(tracker, plan.fingerprint)
    pending = bool(plan.op_ids) and any(
        op.id in plan.op_ids for op in store.issues.outbox(tracker, fingerprint=plan.fingerprint)
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
        comment = OutboxPayload(body=redactor.redact(needs_person_comment(run_id or "?")))
        store.issues.flag_needs_person(
            tracker.name, cluster.fingerprint, _needs_person_op(tracker.name, cluster, comment)
        )
    deliver(tracker, store)


def _needs_person_op(
    tracker: str, cluster: Cluster, comment: OutboxPayload
) -> Callable[[StoredIssue], QueuedOp]:
    def op(row: StoredIssue) -> QueuedOp:
        key = idempotency_key(tracker, cluster.fingerprint, "needs-person", str(row.occurrences))
        return queued(op="comment", payload=comment, key=key)

    return op
