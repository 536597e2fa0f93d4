"""Pure: the guardrails' rulings and the better/worse judgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from greenloop.config import ActionConfig
from greenloop.records import ComponentState, GateResult
from greenloop.remediate.guardrails import (
    STOP_NAME,
    Attempt,
    Change,
    Decision,
    Policy,
    judge_change,
    rule,
)

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
ACTION = ActionConfig(name="restart-cache", kind="command", command=["true"], max_attempts=2)
ALLOWED = Policy(allow=True)


def ruling(
    policy: Policy = ALLOWED,
    history: tuple[Attempt, ...] = (),
    last: datetime | None = None,
    action: ActionConfig = ACTION,
) -> tuple[Decision, str]:
    r = rule(action.name, action, policy=policy, history=history, last_attempt_at=last, now=NOW)
    return r.decision, r.reason


def attempt(status: str, name: str = "restart-cache", ago_s: float = 600) -> Attempt:
    return Attempt(name, status, NOW - timedelta(seconds=ago_s), "detail")


def test_dry_run_unless_allowed() -> None:
    decision, reason = ruling(Policy(allow=False))
    assert decision is Decision.DRY_RUN and "--allow-remediation" in reason
    assert ruling()[0] is Decision.RUN


def test_attempts_count_done_and_failed_only() -> None:
    assert ruling(history=(attempt("done"),))[0] is Decision.RUN
    decision, reason = ruling(history=(attempt("done"), attempt("failed")))
    assert decision is Decision.REFUSED and "max_attempts 2 reached" in reason
    not_attempts = (attempt("dry_run"), attempt("refused"), attempt("dry_run"))
    assert ruling(history=not_attempts)[0] is Decision.RUN
    other = (attempt("done", name="flush"), attempt("done", name="flush"))
    assert ruling(history=other)[0] is Decision.RUN


def test_cooldown() -> None:
    cooled = ActionConfig(name="restart-cache", kind="command", command=["true"], cooldown_s=300)
    decision, reason = ruling(last=NOW - timedelta(seconds=60), action=cooled)
    assert decision is Decision.REFUSED and "cooldown" in reason and "60 s ago" in reason
    assert ruling(last=NOW - timedelta(seconds=301), action=cooled)[0] is Decision.RUN
    assert ruling(last=NOW - timedelta(seconds=1))[0] is Decision.RUN  # no cooldown set


def test_stopped_run_refuses_everything() -> None:
    stop = Attempt(STOP_NAME, "refused", NOW, "restart-cache made things worse")
    decision, reason = ruling(history=(stop,))
    assert decision is Decision.REFUSED and "made things worse" in reason


def test_approval_modes() -> None:
    assert ruling(Policy(allow=True, approval="flag"))[0] is Decision.REFUSED
    assert ruling(Policy(allow=True, approval="flag", approve=True))[0] is Decision.RUN
    decision, reason = ruling(Policy(allow=True, approval="tty", interactive=False))
    assert decision is Decision.REFUSED and "not a terminal" in reason
    assert ruling(Policy(allow=True, approval="tty", interactive=True))[0] is Decision.ASK
    # Not allowed at all: still only a dry run, whatever the approval says.
    assert ruling(Policy(allow=False, approval="flag", approve=True))[0] is Decision.DRY_RUN


def gate(*unhealthy: str, components: tuple[str, ...] = ("lb", "backend", "cache")) -> GateResult:
    states = tuple(ComponentState(name, name not in unhealthy) for name in components)
    return GateResult(not unhealthy, states, ())


def test_judge_change() -> None:
    change, words = judge_change(gate("cache", "backend"), gate())
    assert change is Change.BETTER and "recovered: backend, cache" in words
    change, words = judge_change(gate("cache"), gate("cache", "lb"))
    assert change is Change.WORSE and "newly unhealthy: lb" in words
    assert judge_change(gate("cache"), gate("lb"))[0] is Change.UNCHANGED
    assert judge_change(gate(components=()), gate(components=()))[0] is Change.UNCHANGED
