"""Pure decisions: what to do with one fingerprint's issue after a run.

- present, no issue yet          -> create
- present, issue open            -> comment (a new occurrence)
- present, issue closed          -> reopen (a regression), with a comment
- absent, issue open, run green  -> count a green run; close after `close_after` in a row
- absent, run not green          -> nothing: a failing or blocked run proves nothing about
                                    this problem, so it neither counts nor resets the streak
- absent, issue closed           -> nothing

Each run counts once, even when it loops over several iterations: `last_run_id`
and `green_streak` tell whether this run already counted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from greenloop.records import IssueAction, Verdict


class Op(enum.StrEnum):
    CREATE = "create"
    COMMENT = "comment"
    REOPEN = "reopen"
    CLOSE = "close"
    NONE = "none"

    @property
    def action(self) -> IssueAction:
        return {
            Op.CREATE: IssueAction.CREATED,
            Op.COMMENT: IssueAction.UPDATED,
            Op.REOPEN: IssueAction.REOPENED,
            Op.CLOSE: IssueAction.CLOSED,
            Op.NONE: IssueAction.UPDATED,
        }[self]


@dataclass(frozen=True)
class IndexState:
    """One row of the issue index, as the decision needs it."""

    state: str  # open | closed
    occurrences: int = 1
    green_streak: int = 0
    last_run_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """The operation to queue and the index row as it should be afterwards."""

    op: Op
    state: str
    occurrences: int
    green_streak: int
    last_run_id: str | None


def decide(
    current: IndexState | None,
    *,
    present: bool,
    run_id: str,
    verdict: Verdict,
    close_after: int,
) -> Decision:
    """What to do for one fingerprint in one run (see the module docstring)."""
    if present:
        return _occurred(current, run_id)
    if current is None:
        return Decision(Op.NONE, "closed", 0, 0, None)
    unchanged = Decision(
        Op.NONE, current.state, current.occurrences, current.green_streak, current.last_run_id
    )
    if current.state != "open" or verdict is not Verdict.GREEN:
        return unchanged
    if current.last_run_id == run_id and current.green_streak > 0:
        return unchanged  # this run already counted as green
    streak = current.green_streak + 1
    if streak >= close_after:
        return Decision(Op.CLOSE, "closed", current.occurrences, streak, run_id)
    return Decision(Op.NONE, "open", current.occurrences, streak, run_id)


def _occurred(current: IndexState | None, run_id: str) -> Decision:
    if current is None:
        return Decision(Op.CREATE, "open", 1, 0, run_id)
    if current.last_run_id == run_id and current.green_streak == 0 and current.state == "open":
        # Seen earlier in this same run (an earlier iteration): one occurrence per run.
        return Decision(Op.NONE, "open", current.occurrences, 0, run_id)
    op = Op.COMMENT if current.state == "open" else Op.REOPEN
    return Decision(op, "open", current.occurrences + 1, 0, run_id)
