"""Pure: which runbook answers which cluster, and the ordered actions to take.

A cluster is answered by the first runbook whose `match` it satisfies (every
key set in the match must hold: root-cause component, category, fingerprint
prefix). Clusters are taken in the order triage gives them (most impact
first); a runbook action needed by several clusters runs once per scope (once
for the environment, or once per component for a restart).

Some clusters are never remediated: flaky tests, broken tests and tests
skipped for the environment are reported, not "fixed", and nothing is
remediated when the tests did not really run (verdict not_real).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from greenloop.config import ActionConfig, MatchConfig, RunbookConfig
from greenloop.records import Category, Cluster, Verdict

NEVER_REMEDIATED = frozenset({Category.FLAKY, Category.TEST, Category.SKIPPED_ENV})


@dataclass(frozen=True, slots=True)
class Step:
    """One action to consider: which runbook and action, what it acts on, and for which clusters.

    `refusal` is set when the runbook matched but the cluster must not be remediated.
    """

    runbook: str
    runbook_index: int
    action_index: int
    action: ActionConfig
    clusters: tuple[Cluster, ...]
    scope: str = ""
    refusal: str = ""

    @property
    def name(self) -> str:
        """The name attempts are counted under: the action's, plus its scope if any."""
        return f"{self.action.name}:{self.scope}" if self.scope else self.action.name

    @property
    def fingerprint(self) -> str:
        return self.clusters[0].fingerprint

    def for_clusters(self) -> str:
        """`runbook X, for cluster REASON (fingerprint)[, ...]`, for details."""
        names = ", ".join(f"{c.reason} ({c.fingerprint[:12]})" for c in self.clusters)
        return f"runbook {self.runbook}, for {names}"


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...] = ()
    unmatched: tuple[Cluster, ...] = field(default=())  # remediable, but no runbook answers


def matches(match: MatchConfig, cluster: Cluster) -> bool:
    """Every key set in the match holds for the cluster (an empty match holds for none)."""
    checks = []
    if match.component is not None:
        checks.append(cluster.root_cause.component == match.component)
    if match.category is not None:
        checks.append(cluster.category.value == match.category)
    if match.fingerprint is not None:
        checks.append(cluster.fingerprint.startswith(match.fingerprint))
    return bool(checks) and all(checks)


def refusal(cluster: Cluster, verdict: Verdict) -> str:
    """Why this cluster must not be remediated, or "" when it may be."""
    if verdict is Verdict.NOT_REAL:
        return "verdict not_real: the tests did not really run, so nothing is remediated"
    if cluster.category in NEVER_REMEDIATED:
        return (
            f"category {cluster.category.value}: reported, never remediated "
            "(a flaky or broken test is fixed in the test, not in the environment)"
        )
    return ""


def first_runbook(cluster: Cluster, runbooks: Sequence[RunbookConfig]) -> int | None:
    return next((i for i, rb in enumerate(runbooks) if matches(rb.match, cluster)), None)


Scope = Callable[[ActionConfig, Cluster], str]


def plan(
    clusters: Sequence[Cluster],
    runbooks: Sequence[RunbookConfig],
    verdict: Verdict,
    scope: Scope = lambda _action, _cluster: "",
) -> Plan:
    """The ordered steps for these clusters; `scope` says what an action acts on for a cluster."""
    steps: dict[tuple[int, int, str, bool], Step] = {}
    unmatched: list[Cluster] = []
    for cluster in clusters:
        index = first_runbook(cluster, runbooks)
        if index is None:
            if not refusal(cluster, verdict):
                unmatched.append(cluster)
            continue
        runbook = runbooks[index]
        refused = refusal(cluster, verdict)
        for j, action in enumerate(runbook.actions):
            where = scope(action, cluster)
            key = (index, j, where, bool(refused))
            if key in steps:
                existing = steps[key]
                steps[key] = Step(
                    existing.runbook,
                    index,
                    j,
                    action,
                    (*existing.clusters, cluster),
                    where,
                    existing.refusal,
                )
            else:
                steps[key] = Step(runbook.name, index, j, action, (cluster,), where, refused)
    return Plan(tuple(steps.values()), tuple(unmatched))
