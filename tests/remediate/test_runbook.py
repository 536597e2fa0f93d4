"""Pure: matching clusters to runbooks and planning the ordered steps."""

from __future__ import annotations

from greenloop.config import ActionConfig, MatchConfig, RunbookConfig
from greenloop.records import Category, Cluster, RootCause, Verdict
from greenloop.remediate.runbook import Step, matches, plan, refusal


def cluster(
    fingerprint: str = "f00d1234",
    category: Category = Category.INFRASTRUCTURE,
    component: str | None = "cache",
    reason: str = "CACHE-UNAVAILABLE",
) -> Cluster:
    return Cluster(
        id=f"c-{fingerprint[:4]}",
        fingerprint=fingerprint,
        category=category,
        confidence=0.9,
        tests=("tests/test_a.py::test_a",),
        title="ConnectionRefusedError to cache",
        reason=reason,
        root_cause=RootCause("cache refuses connections", component),
    )


def runbook(name: str, *actions: str, **match: str) -> RunbookConfig:
    return RunbookConfig(
        name=name,
        match=MatchConfig(**match),
        actions=[ActionConfig(name=a, kind="command", command=["true"]) for a in actions],
    )


def names(steps: tuple[Step, ...]) -> list[str]:
    return [s.name for s in steps]


def test_match_keys_must_all_hold() -> None:
    c = cluster()
    assert matches(MatchConfig(component="cache"), c)
    assert matches(MatchConfig(category="infrastructure"), c)
    assert matches(MatchConfig(fingerprint="f00d"), c)
    assert matches(MatchConfig(component="cache", category="infrastructure"), c)
    assert not matches(MatchConfig(component="cache", category="product"), c)
    assert not matches(MatchConfig(component="database"), c)
    assert not matches(MatchConfig(fingerprint="beef"), c)
    assert not matches(MatchConfig(), c)  # an empty match answers nothing


def test_first_matching_runbook_answers_each_cluster_in_order() -> None:
    runbooks = [
        runbook("cache", "restart-cache", "flush-cache", component="cache"),
        runbook("infra", "page-ops", category="infrastructure"),
        runbook("product", "rollback", category="product"),
    ]
    clusters = [
        cluster("aaaa", Category.PRODUCT, "backend"),
        cluster("bbbb"),
        cluster("cccc", component="database"),
    ]
    result = plan(clusters, runbooks, Verdict.FAILING)
    assert names(result.steps) == ["rollback", "restart-cache", "flush-cache", "page-ops"]
    assert [s.fingerprint for s in result.steps] == ["aaaa", "bbbb", "bbbb", "cccc"]
    assert all(not s.refusal for s in result.steps)


def test_one_action_runs_once_for_several_clusters() -> None:
    runbooks = [runbook("product", "rollback", category="product")]
    clusters = [cluster("aaaa", Category.PRODUCT), cluster("bbbb", Category.PRODUCT)]
    (step,) = plan(clusters, runbooks, Verdict.FAILING).steps
    assert [c.fingerprint for c in step.clusters] == ["aaaa", "bbbb"]
    assert "aaaa" in step.for_clusters() and "bbbb" in step.for_clusters()


def test_scope_splits_an_action_per_component() -> None:
    runbooks = [runbook("infra", "restart", category="infrastructure")]
    clusters = [cluster("aaaa", component="cache"), cluster("bbbb", component="database")]
    result = plan(
        clusters, runbooks, Verdict.BLOCKED, scope=lambda a, c: c.root_cause.component or ""
    )
    assert names(result.steps) == ["restart:cache", "restart:database"]


def test_flaky_broken_and_env_skipped_tests_are_never_remediated() -> None:
    runbooks = [runbook("cache", "restart-cache", component="cache")]
    for category in (Category.FLAKY, Category.TEST, Category.SKIPPED_ENV):
        (step,) = plan([cluster(category=category)], runbooks, Verdict.FAILING).steps
        assert step.refusal.startswith(f"category {category.value}")
    assert refusal(cluster(category=Category.BLOCKED), Verdict.BLOCKED) == ""


def test_not_real_verdict_remediates_nothing() -> None:
    runbooks = [runbook("cache", "restart-cache", component="cache")]
    (step,) = plan([cluster()], runbooks, Verdict.NOT_REAL).steps
    assert "not_real" in step.refusal


def test_refused_and_allowed_steps_of_one_action_stay_apart() -> None:
    runbooks = [runbook("cache", "restart-cache", component="cache")]
    clusters = [cluster("aaaa", Category.FLAKY), cluster("bbbb", Category.INFRASTRUCTURE)]
    steps = plan(clusters, runbooks, Verdict.FAILING).steps
    assert [(s.fingerprint, bool(s.refusal)) for s in steps] == [("aaaa", True), ("bbbb", False)]


def test_unmatched_clusters_are_listed() -> None:
    result = plan(
        [cluster(component="search")], [runbook("x", "a", component="cache")], Verdict.FAILING
    )
    assert result.steps == () and [c.root_cause.component for c in result.unmatched] == ["search"]
