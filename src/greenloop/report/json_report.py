"""The JSON report of CONTRACT.md (`schema: greenloop.report/v1`), built from a RunResult.

Pure: records in, a JSON-able dict out. The same function serves `greenloop triage
--json`, where only tests and clusters are filled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from greenloop.gate import probes_json
from greenloop.records import (
    AuthenticityFinding,
    Cluster,
    IssueRef,
    IterationResult,
    Outcome,
    RunResult,
    TestResult,
)

SCHEMA = "greenloop.report/v1"


def build_json_report(
    run: RunResult,
    *,
    worklog: Path | str | None = None,
    mrr_at_risk_usd: float | None = None,
    triage_only: bool = False,
) -> dict[str, Any]:
    """The contract's report object for a run (or, with `triage_only`, for triaged JUnit files).

    Tests, clusters, authenticity and probes come from the last iteration: the state the
    run ended in. Iterations keep their own verdicts and actions; issues are every
    distinct (key, action) the run produced, in order.
    """
    last = run.last
    tests = last.tests if last else ()
    clusters = last.clusters if last else ()
    findings = last.authenticity if last else ()
    warnings = last.authenticity_warnings if last else ()
    worklog_path = worklog if worklog is not None else run.worklog
    impact = mrr_at_risk_usd if mrr_at_risk_usd is not None else mrr_at_risk(clusters)
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "verdict": run.verdict.value,
        "exit_code": int(run.exit_code),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": round(run.duration_s, 3),
        "interrupted": run.interrupted,
        "error": run.error or None,
        "environment": {"name": run.environment, "revision": run.revision},
        "focus": run.focus,
        "command_line": run.command_line,
        "iterations": [] if triage_only else [_iteration(i) for i in run.iterations],
        "probes": [] if triage_only or not last else _probes(last),
        "phases": [] if triage_only or not last else _phases(last),
        "tests": _tests(tests, last) if last else [],
        "clusters": [_cluster(c) for c in clusters],
        "authenticity": [_finding(f) for f in findings],
        "authenticity_warnings": [_finding(f) for f in warnings],
        "impact": {"mrr_at_risk_usd": round(float(impact), 2)},
        "issues": [_issue(i) for i in distinct_issues(run.iterations)],
        "worklog": str(worklog_path) if worklog_path else None,
    }


# A list longer than this is written one item per line: readable, and the C encoder (which
# cannot indent) does the work; indenting 100,000 tests in pure Python takes seconds.
LONG_LIST = 20


class EncodedItems(list[str]):
    """A long list already encoded: each item the compact JSON text (`compact_encoder`)
    of one value; `json_text` writes the items as they are (report/rows.py makes them)."""


def compact_encoder() -> Callable[[Any], str]:
    """The encoder of one item of a long list: compact, NaN and infinity refused."""
    return json.JSONEncoder(default=str, allow_nan=False).encode


def json_text(payload: dict[str, Any]) -> str:
    """A report as JSON text: two-space indented, long lists (tests, clusters) one compact
    item per line. NaN and infinity are refused (ValueError): they are not JSON. A list
    of more than LONG_LIST items may come already encoded (`EncodedItems`)."""

    def dump(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, indent=indent, default=str, allow_nan=False)

    compact = compact_encoder()  # one encoder, reused
    parts = []
    for key, value in payload.items():
        if isinstance(value, EncodedItems) and len(value) <= LONG_LIST:
            value = [json.loads(item) for item in value]  # short lists are indented
        if isinstance(value, list) and len(value) > LONG_LIST:
            encoded = value if isinstance(value, EncodedItems) else map(compact, value)
            items = ",\n    ".join(encoded)
            items = f"    {items}"
            parts.append(f"  {dump(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {dump(key)}: " + dump(value, 2).replace("\n", "\n  "))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def mrr_at_risk(clusters: tuple[Cluster, ...]) -> float:
    """Money at risk when triage did not say: the sum of the clusters' impact."""
    return sum(c.impact_usd for c in clusters)


def distinct_issues(iterations: tuple[IterationResult, ...]) -> list[IssueRef]:
    """Every (key, action) pair once, in the order the run produced them."""
    seen: set[tuple[str, str, str]] = set()
    out: list[IssueRef] = []
    for iteration in iterations:
        for ref in iteration.issues:
            marker = (ref.key, ref.fingerprint, ref.action.value)
            if marker not in seen:
                seen.add(marker)
                out.append(ref)
    return out


def _finding(f: AuthenticityFinding) -> dict[str, Any]:
    return {"nodeid": f.nodeid, "check": f.check, "evidence": f.evidence, "strength": f.strength}


def real_evidence(test: TestResult, finding: AuthenticityFinding | None) -> str:
    """Why the test counts as really run (or not), in one line a reviewer can check."""
    if finding is not None:
        return f"{finding.check}: {finding.evidence}"
    if test.xfail:
        reason = f": {test.xfail_reason}" if test.xfail_reason else ""
        what = "failed as expected" if test.xfailed else "passed although marked xfail"
        return f"{test.xfail}{reason} (ran {_seconds(test.duration_s):.3f}s, {what})"
    if test.outcome is Outcome.BLOCKED:
        return f"not run: blocked by {test.blocked_by or 'the health gate'}"
    if test.outcome is Outcome.SKIPPED:
        return f"skipped: {test.skip_reason or test.message or 'no reason given'}"
    parts = [f"ran {_seconds(test.duration_s):.3f}s"]
    if test.connections:
        hosts = sorted({f"{c.host}:{c.port}" for c in test.connections})
        parts.append("connected to " + ", ".join(hosts[:3]))
    if test.request_id:
        parts.append(f"request id {test.request_id}")
    return ", ".join(parts)


def _iteration(iteration: IterationResult) -> dict[str, Any]:
    return {
        "number": iteration.number,
        "verdict": iteration.verdict.value,
        "duration_s": round(iteration.duration_s, 3),
        "started_at": _iso(iteration.started_at),
        "interrupted": iteration.interrupted,
        "actions": [
            {"name": a.name, "kind": a.kind, "status": a.status.value, "detail": a.detail}
            for a in iteration.actions
        ],
        "issues": [_issue(i) for i in iteration.issues],
    }


def _probes(iteration: IterationResult) -> list[dict[str, Any]]:
    if iteration.gate is None:
        return []
    return probes_json(iteration.gate)


def _phases(iteration: IterationResult) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "status": p.status.value,
            "duration_s": round(p.duration_s, 3),
            "counts": p.counts(),
            "command": p.command,
            "blocked_by": p.blocked_by,
            "note": p.note,
        }
        for p in iteration.phases
    ]


def _tests(tests: tuple[TestResult, ...], iteration: IterationResult) -> list[dict[str, Any]]:
    """Each test's row; findings, categories and clusters are looked up by node id (one
    pass over each, so the report is linear in the number of tests)."""
    findings: dict[str, AuthenticityFinding] = {}
    for f in iteration.authenticity:
        findings.setdefault(f.nodeid, f)
    categories: dict[str, str] = {}
    for c in iteration.classifications:
        categories.setdefault(c.nodeid, c.category.value)
    clusters: dict[str, str] = {}
    for cluster in iteration.clusters:
        for nodeid in cluster.tests:
            clusters.setdefault(nodeid, cluster.id)
    return [
        _test(t, findings.get(t.nodeid), categories.get(t.nodeid), clusters.get(t.nodeid))
        for t in tests
    ]


def _test(
    test: TestResult,
    finding: AuthenticityFinding | None,
    category: str | None,
    cluster: str | None,
) -> dict[str, Any]:
    return {
        "nodeid": test.nodeid,
        "phase": test.phase,
        "outcome": test.outcome.value,
        "duration_s": _seconds(test.duration_s),
        "category": category,
        "cluster_id": cluster,
        # a test that was skipped or blocked did not run: it proves nothing about the target
        "real": finding is None and test.outcome not in (Outcome.SKIPPED, Outcome.BLOCKED),
        "real_evidence": real_evidence(test, finding),
        "message": test.message,
        "file": test.file or None,
        "line": test.line,
        "reruns": [o.value for o in test.reruns],
        "xfail": test.xfail or None,
    }


def _seconds(value: float) -> float:
    """A duration fit for JSON: rounded, and 0 for NaN or infinity (not valid JSON)."""
    return round(value, 3) if math.isfinite(value) else 0.0


def _cluster(cluster: Cluster) -> dict[str, Any]:
    return {
        "id": cluster.id,
        "fingerprint": cluster.fingerprint,
        "category": cluster.category.value,
        "confidence": cluster.confidence,
        "count": cluster.count,
        "tests": list(cluster.tests),
        "title": cluster.title,
        "reason": cluster.reason,
        "root_cause": {
            "summary": cluster.root_cause.summary,
            "component": cluster.root_cause.component,
            # Blocked clusters: how the deepest failing component failed, and whether
            # that is an infrastructure or a configuration problem (null otherwise).
            "mode": _value(cluster.root_cause.mode),
            "category": _value(cluster.root_cause.category),
            "whys": [
                {"why": w.why, "evidence": w.evidence, "verified": w.verified}
                for w in cluster.root_cause.whys
            ],
        },
        "impact_usd": cluster.impact_usd,
        "excerpt": cluster.excerpt,
    }


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _issue(ref: IssueRef) -> dict[str, Any]:
    return {
        "key": ref.key,
        "title": ref.title,
        "action": ref.action.value,
        "location": ref.location,
        "fingerprint": ref.fingerprint,
    }


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
