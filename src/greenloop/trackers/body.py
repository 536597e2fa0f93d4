"""Issue titles, labels, bodies and comments, rendered from a cluster.

Titles follow the team convention `E2E-DEPLOY-{REASON}-{test-short-name}` (a cluster of
many tests names its cause and a count instead of one test); bodies
have the sections a person needs to act (impact, current and expected behaviour,
reproduction, technical details, five whys, evidence) and end with the hidden
fingerprint marker that finds the issue again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from greenloop.records import Category, Cluster, IndexEntry, TestResult
from greenloop.trackers.base import fingerprint_marker

EXCERPT_LINES = 20


@dataclass(frozen=True)
class IssueContext:
    """What a body says about where and how the problem was seen."""

    run_id: str
    environment: str
    revision: str | None
    command_line: str


def short_test_name(nodeid: str) -> str:
    """`tests/e2e/test_ws.py::TestX::test_events[param]` -> `test_events`."""
    path, _, rest = nodeid.partition("::")
    name = rest.rsplit("::", 1)[-1] if rest else path.rsplit("/", 1)[-1].removesuffix(".py")
    return re.sub(r"\[.*\]$", "", name) or "tests"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", text.upper()).strip("-")


def issue_title(cluster: Cluster) -> str:
    """`E2E-DEPLOY-{REASON}-{test-short-name}` for a one-test cluster; a cluster of many
    tests is titled by its cause and a count, not by one of its tests:
    `E2E-DEPLOY-BLOCKED-BY-REDIS-REFUSED-77-tests`, `E2E-DEPLOY-APP-500-CHECKOUT-3-tests`
    (the root cause's component is added when the reason does not name it; a blocked
    cluster's reason names its component and mode already). Only the first title is
    sent to the tracker: the issue is found again by its fingerprint, never its title."""
    reason = _slug(cluster.reason) or "FAILURE"
    if len(cluster.tests) <= 1:
        first = cluster.tests[0] if cluster.tests else ""
        return f"E2E-DEPLOY-{reason}-{short_test_name(first)}"
    component = _slug(cluster.root_cause.component or "")
    if component and cluster.category is not Category.BLOCKED and component not in reason:
        reason = f"{reason}-{component}"
    return f"E2E-DEPLOY-{reason}-{len(cluster.tests)}-tests"


def priority_of(cluster: Cluster, index: Sequence[IndexEntry]) -> int | None:
    """The most urgent index priority among the cluster's test files."""
    files = {t.split("::", 1)[0] for t in cluster.tests}
    found = [e.priority for e in index for f in files if f == e.path or f.endswith("/" + e.path)]
    return min(found) if found else None


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LABEL_FIELDS = ("category", "priority")


def unknown_placeholders(template: str) -> list[str]:
    """The `{name}` parts of a label template that are not {category} or {priority}."""
    return [m.group(0) for m in _PLACEHOLDER.finditer(template) if m.group(1) not in _LABEL_FIELDS]


def issue_labels(cluster: Cluster, templates: Sequence[str], priority: int | None) -> list[str]:
    """Configured labels with `{category}` and `{priority}` filled; empty ones dropped.

    Only those two names are replaced (never str.format: a label is text, not code);
    anything else in braces stays as written.
    """
    values = {
        "category": cluster.category.value,
        "priority": f"P{priority}" if priority is not None else "",
    }
    labels: list[str] = []
    for template in templates:
        label = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template).strip()
        if label and label not in labels:
            labels.append(label)
    return labels


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}\n{text.rstrip()}\n{ticks}"


def _excerpt(cluster: Cluster, tests: Mapping[str, TestResult]) -> str:
    if cluster.excerpt:
        return cluster.excerpt
    for nodeid in cluster.tests:
        t = tests.get(nodeid)
        if t and (t.longrepr or t.message):
            lines = (t.longrepr or t.message).strip().splitlines()
            return "\n".join(lines[-EXCERPT_LINES:])
    return ""


# What the tests of a cluster did, when they did not fail: blocked by the gate, or skipped.
_HOW = {Category.BLOCKED: "blocked", Category.SKIPPED_ENV: "skipped"}


def issue_body(
    cluster: Cluster,
    ctx: IssueContext,
    *,
    tests: Mapping[str, TestResult],
    priority: int | None,
) -> str:
    """The first body of the issue; later occurrences are comments."""
    first = tests.get(cluster.tests[0]) if cluster.tests else None
    where = ""
    if first is not None and first.file:
        where = f"{first.file}:{first.line}" if first.line else first.file
    nodeids = " ".join(f"'{n}'" for n in cluster.tests[:5])
    lines = [
        f"**{cluster.title}**",
        "",
        "## Impact",
        "",
        f"- {cluster.count} {_HOW.get(cluster.category, 'failing')} "
        f"test{'s' if cluster.count != 1 else ''} "
        f"({cluster.category.value}, {cluster.confidence:.0%} confidence)",
        f"- ${cluster.impact_usd:,.0f} MRR at risk"
        + (f", priority P{priority}" if priority is not None else ""),
        "",
        "## Current behavior",
        "",
        (first.message if first and first.message else cluster.title),
        "",
        "## Expected behavior",
        "",
        "These tests pass against the deployed revision:",
        "",
        *[f"- `{n}`" for n in cluster.tests[:20]],
        *([f"- and {cluster.count - 20} more"] if cluster.count > 20 else []),
        "",
        "## Reproduction",
        "",
        _fence(
            f"{ctx.command_line or 'greenloop run'}\n# or the failing tests alone:\n"
            f"python -m pytest {nodeids}"
        ),
        "",
        "## Technical details",
        "",
        f"- Environment: {ctx.environment}",
        f"- Revision: {ctx.revision or 'unknown'}",
        f"- Run: `{ctx.run_id}`",
        *([f"- Where: `{where}`"] if where else []),
        f"- Fingerprint: `{cluster.fingerprint}`",
        "",
    ]
    excerpt = _excerpt(cluster, tests)
    if excerpt:
        lines += [_fence(excerpt), ""]
    lines += ["## Five whys", ""]
    if cluster.root_cause.whys:
        for i, why in enumerate(cluster.root_cause.whys, 1):
            mark = "verified" if why.verified else "hypothesis"
            evidence = f" Evidence: {why.evidence}" if why.evidence else ""
            lines.append(f"{i}. **{mark}**: {why.why}.{evidence}")
    else:
        lines.append("Not determined: no chain could be built from the evidence.")
    lines += [
        "",
        f"Root cause: {cluster.root_cause.summary or 'not determined'}"
        + (
            f" (component `{cluster.root_cause.component}`)" if cluster.root_cause.component else ""
        ),
        "",
        "## Evidence",
        "",
    ]
    for nodeid in cluster.tests[:10]:
        t = tests.get(nodeid)
        if t is None:
            lines.append(f"- `{nodeid}`")
            continue
        extra = f", request id {t.request_id}" if t.request_id else ""
        lines.append(f"- `{nodeid}`: {t.outcome.value} after {t.duration_s:.2f}s{extra}")
    lines += ["", "_Filed by greenloop._", "", fingerprint_marker(cluster.fingerprint), ""]
    return "\n".join(lines)


def occurrence_comment(
    cluster: Cluster,
    ctx: IssueContext,
    *,
    occurrences: int,
    previous_tests: Sequence[str] | None,
    previous_revision: str | None,
    reopened: bool = False,
) -> str:
    """A new sighting: count, run, and what changed since the last one."""
    head = "Regression: seen again after it was closed" if reopened else "Seen again"
    lines = [
        f"**{head}** in run `{ctx.run_id}` on {ctx.environment} "
        f"(revision {ctx.revision or 'unknown'}): occurrence #{occurrences}, "
        f"{cluster.count} {_HOW.get(cluster.category, 'failing')} "
        f"test{'s' if cluster.count != 1 else ''}.",
        "",
    ]
    changes: list[str] = []
    if previous_revision is not None and previous_revision != ctx.revision:
        changes.append(f"revision {previous_revision} → {ctx.revision or 'unknown'}")
    if previous_tests is not None:
        new = sorted(set(cluster.tests) - set(previous_tests))
        gone = sorted(set(previous_tests) - set(cluster.tests))
        if new:
            changes.append("newly failing: " + ", ".join(f"`{n}`" for n in new[:5]))
        if gone:
            changes.append("no longer failing: " + ", ".join(f"`{n}`" for n in gone[:5]))
    lines.append(
        "What changed: "
        + ("; ".join(changes) if changes else "nothing; same tests, same revision")
        + "."
    )
    if cluster.excerpt:
        lines += ["", _fence(cluster.excerpt)]
    return "\n".join(lines) + "\n"


def close_comment(run_id: str, green_runs: int) -> str:
    return (
        f"Closing: not seen in {green_runs} consecutive green run"
        f"{'s' if green_runs != 1 else ''} (last: `{run_id}`). "
        "greenloop reopens it if the failure comes back.\n"
    )


def needs_person_comment(run_id: str) -> str:
    return (
        f"greenloop is stuck on this problem (run `{run_id}`): two iterations in a row "
        "failed the same way and no remediation was left to try. A person needs to look.\n"
    )
