"""The verdict rules: worst first, and when going round again is pointless."""

from __future__ import annotations

from greenloop.records import (
    Action,
    ActionStatus,
    AuthenticityFinding,
    Category,
    Cluster,
    IterationResult,
    Outcome,
    PhaseResult,
    PhaseStatus,
    RootCause,
    TestResult,
    Verdict,
    utcnow,
)
from greenloop.verdict import is_stuck, iteration_verdict, run_verdict


def phase(status: PhaseStatus, *outcomes: Outcome, reruns: tuple[Outcome, ...] = ()) -> PhaseResult:
    tests = tuple(TestResult(f"t.py::t{i}", o, reruns=reruns) for i, o in enumerate(outcomes))
    return PhaseResult("p", status, 1.0, tests)


def test_all_passed_is_green() -> None:
    assert iteration_verdict([phase(PhaseStatus.PASSED, Outcome.PASSED)], []) is Verdict.GREEN


def test_any_failure_kind_is_failing() -> None:
    for outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASHED):
        verdict = iteration_verdict([phase(PhaseStatus.FAILED, Outcome.PASSED, outcome)], [])
        assert verdict is Verdict.FAILING


def test_pass_on_retry_is_still_failing() -> None:
    flaky = phase(PhaseStatus.FAILED, Outcome.FAILED, reruns=(Outcome.PASSED,))
    assert flaky.counts()["flaky"] == 1
    assert iteration_verdict([flaky], []) is Verdict.FAILING


def test_blocked_phase_is_blocked_unless_something_failed() -> None:
    blocked = phase(PhaseStatus.BLOCKED, Outcome.BLOCKED, Outcome.BLOCKED)
    assert iteration_verdict([blocked], []) is Verdict.BLOCKED
    ran = phase(PhaseStatus.FAILED, Outcome.FAILED)
    assert iteration_verdict([ran, blocked], []) is Verdict.FAILING


def test_any_authenticity_finding_is_not_real() -> None:
    finding = AuthenticityFinding("t.py::t0", "mocked", "httpx.Client.get was a MagicMock")
    passed = phase(PhaseStatus.PASSED, Outcome.PASSED)
    assert iteration_verdict([passed], [finding]) is Verdict.NOT_REAL


def test_run_without_iterations_ran_nothing_real() -> None:
    assert run_verdict([]) is Verdict.NOT_REAL


def iteration(fingerprints: list[str], action: ActionStatus | None = None) -> IterationResult:
    clusters = tuple(
        Cluster(f"C-{f}", f, Category.PRODUCT, 0.9, ("t",), "t", "APP-500", RootCause("x", None))
        for f in fingerprints
    )
    actions = (Action("rollback", "rollback", action, "d"),) if action else ()
    return IterationResult(1, Verdict.FAILING, 1.0, utcnow(), clusters=clusters, actions=actions)


def test_stuck_when_same_failures_and_nothing_done() -> None:
    assert is_stuck([iteration(["a"]), iteration(["a"])])
    assert is_stuck([iteration(["a"]), iteration(["a"], ActionStatus.DRY_RUN)])


def test_not_stuck_when_an_action_ran_or_failures_changed() -> None:
    assert not is_stuck([iteration(["a"]), iteration(["a"], ActionStatus.DONE)])
    assert not is_stuck([iteration(["a"]), iteration(["b"])])
    assert not is_stuck([iteration(["a"])])
