"""Clusters: failures sharing one fingerprint are one problem.

Blocked tests cluster by the component that blocked them, environment skips
by their reason, everything else by the failure fingerprint. Clusters are
ranked by money at risk, then by how many tests they hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from greenloop.records import Category, Cluster, GateResult, IndexEntry
from greenloop.redact import Redactor
from greenloop.triage.classify import Decision
from greenloop.triage.fingerprint import (
    blocked_fingerprint,
    cluster_id,
    fingerprint_evidence,
    skipped_fingerprint,
)
from greenloop.triage.impact import impact_usd
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.names import component_reason, phrase
from greenloop.triage.rootcause import ChangeFacts, build_root_cause

_REDACT = Redactor()


def cluster_key(decision: Decision) -> str | None:
    """The fingerprint a decision clusters under; None for deliberate skips (no problem)."""
    c = decision.classification
    if c.category is Category.BLOCKED:
        return blocked_fingerprint(c.component or "environment")
    if c.category is Category.SKIPPED_ENV:
        return skipped_fingerprint(c.evidence)
    if decision.reason == "SKIPPED":
        return None
    return fingerprint_evidence(decision.evidence, c.category)


def _most_common(values: Sequence[str | None]) -> str | None:
    present = [v for v in values if v]
    return Counter(present).most_common(1)[0][0] if present else None


def title(category: Category, reason: str, component: str | None, count: int) -> str:
    """A sentence a person reads first: 'Cache unhealthy: 12 tests blocked'."""
    tests = f"{count} test{'s' if count != 1 else ''}"
    name = (component or "").capitalize()
    if category is Category.BLOCKED:
        return f"{name or 'Environment'} unhealthy: {tests} blocked"
    if category is Category.SKIPPED_ENV:
        return f"Environment unavailable: {tests} skipped"
    if reason.endswith("-UNAVAILABLE") and name:
        return f"{name} unreachable: {tests} failed"
    where = f" ({component})" if component else ""
    return f"{phrase(reason)}{where}: {tests} failed"


def build_clusters(
    decisions: Sequence[Decision],
    *,
    index: Sequence[IndexEntry] = (),
    gate: GateResult | None = None,
    logs: Sequence[LogRecord] = (),
    change: ChangeFacts = ChangeFacts(),
) -> tuple[Cluster, ...]:
    groups: dict[str, list[Decision]] = {}
    for decision in decisions:
        key = cluster_key(decision)
        if key is not None:
            groups.setdefault(key, []).append(decision)
    clusters = []
    for fp, members in groups.items():
        categories = Counter(m.classification.category for m in members)
        category = categories.most_common(1)[0][0]
        component = _most_common([m.classification.component for m in members])
        base_reason = _most_common([m.reason for m in members]) or "INSUFFICIENT-EVIDENCE"
        reason = component_reason(base_reason, component)
        tests = tuple(dict.fromkeys(m.classification.nodeid for m in members))
        confidence = sum(m.classification.confidence for m in members) / len(members)
        clusters.append(
            Cluster(
                id=cluster_id(fp),
                fingerprint=fp,
                category=category,
                confidence=round(confidence, 2),
                tests=tests,
                title=title(category, reason, component, len(tests)),
                reason=reason,
                root_cause=build_root_cause(
                    members,
                    category=category,
                    reason=base_reason,
                    component=component,
                    gate=gate,
                    logs=logs,
                    change=change,
                ),
                impact_usd=impact_usd(tests, index),
                excerpt=_REDACT.redact(members[0].classification.evidence)[:400],
            )
        )
    return rank(clusters)


def rank(clusters: Sequence[Cluster]) -> tuple[Cluster, ...]:
    """Most money at risk first, then most tests, then a stable order."""
    return tuple(sorted(clusters, key=lambda c: (-c.impact_usd, -c.count, c.id)))
