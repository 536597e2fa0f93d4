"""Pure: may this action run now? And did running it make things better or worse?

In order, an action is:
1. dry-run unless remediation is allowed (`--allow-remediation` or `remediation.enabled`);
2. refused once remediation was stopped for this run (an action made things worse);
3. refused after `max_attempts` attempts in this run (done or failed; dry-runs and refusals
   are not attempts), counted from the store's `actions` table across iterations;
4. refused while `cooldown_s` since its last attempt (in any run) has not passed;
5. subject to approval: `flag` needs `--approve`, `tty` asks on a terminal and refuses
   without one, `none` runs.
The runbooks themselves are the allowlist: nothing else is ever planned.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from greenloop.config import ActionConfig
from greenloop.records import ActionStatus, GateResult

# The record that stops remediation for the rest of a run.
STOP_NAME = "remediation-stopped"
# The automatic rollback when an action made things worse.
ROLLBACK_NAME = "rollback-after-worse"
STOP_KIND = "guardrail"
ATTEMPTED = (ActionStatus.DONE.value, ActionStatus.FAILED.value)


class Decision(enum.StrEnum):
    RUN = "run"
    ASK = "ask"  # approval mode tty on a terminal: the I/O shell asks
    DRY_RUN = "dry_run"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Ruling:
    decision: Decision
    reason: str


@dataclass(frozen=True, slots=True)
class Policy:
    """How remediation was asked to behave for this run."""

    allow: bool
    approval: str = "none"  # none | tty | flag
    approve: bool = False
    interactive: bool = False  # stdin is a terminal


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded action of this run (from the store)."""

    name: str
    status: str
    started_at: datetime
    detail: str = ""


def stop_record(history: Sequence[Attempt]) -> Attempt | None:
    """The record that stopped remediation in this run, if any."""
    return next((a for a in history if a.name == STOP_NAME), None)


def attempts(name: str, history: Sequence[Attempt]) -> int:
    return sum(1 for a in history if a.name == name and a.status in ATTEMPTED)


def rule(
    name: str,
    action: ActionConfig,
    *,
    policy: Policy,
    history: Sequence[Attempt],
    last_attempt_at: datetime | None,
    now: datetime,
) -> Ruling:
    """Decide one action; `history` is this run's actions, `last_attempt_at` from any run."""
    if not policy.allow:
        return Ruling(
            Decision.DRY_RUN,
            "dry-run: remediation is not allowed (pass --allow-remediation or set "
            "remediation.enabled = true)",
        )
    stopped = stop_record(history)
    if stopped is not None:
        return Ruling(Decision.REFUSED, f"remediation stopped for this run: {stopped.detail}")
    done = attempts(name, history)
    if done >= action.max_attempts:
        return Ruling(
            Decision.REFUSED,
            f"max_attempts {action.max_attempts} reached ({done} attempt(s) in this run)",
        )
    if last_attempt_at is not None and action.cooldown_s > 0:
        since = (now - last_attempt_at).total_seconds()
        if since < action.cooldown_s:
            return Ruling(
                Decision.REFUSED,
                f"cooldown: last attempt {since:.0f} s ago, cooldown_s {action.cooldown_s:g}",
            )
    if policy.approval == "flag" and not policy.approve:
        return Ruling(Decision.REFUSED, "approval mode 'flag': not approved (pass --approve)")
    if policy.approval == "tty":
        if not policy.interactive:
            return Ruling(
                Decision.REFUSED, "approval mode 'tty': stdin is not a terminal, nobody to ask"
            )
        return Ruling(Decision.ASK, "approval mode 'tty'")
    return Ruling(Decision.RUN, "allowed")


class Change(enum.StrEnum):
    BETTER = "better"
    WORSE = "worse"
    UNCHANGED = "unchanged"


def judge_change(before: GateResult, after: GateResult) -> tuple[Change, str]:
    """Better or worse by the count of unhealthy components, with the names that moved."""
    was, now = set(before.unhealthy()), set(after.unhealthy())
    moved = []
    if was - now:
        moved.append(f"recovered: {', '.join(sorted(was - now))}")
    if now - was:
        moved.append(f"newly unhealthy: {', '.join(sorted(now - was))}")
    words = f"unhealthy {len(was)} -> {len(now)}" + (f" ({'; '.join(moved)})" if moved else "")
    if not after.components:
        return Change.UNCHANGED, "no probes configured, cannot tell better or worse"
    if len(now) > len(was):
        return Change.WORSE, words
    if len(now) < len(was):
        return Change.BETTER, words
    return Change.UNCHANGED, words
