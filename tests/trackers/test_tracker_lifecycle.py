"""The lifecycle decisions, with plain values."""

from __future__ import annotations

from greenloop.records import Verdict
from greenloop.trackers.lifecycle import IndexState, Op, decide


def run(
    current: IndexState | None,
    *,
    present: bool,
    run_id: str = "r2",
    verdict: Verdict = Verdict.FAILING,
    close_after: int = 2,
):
    return decide(current, present=present, run_id=run_id, verdict=verdict, close_after=close_after)


def test_new_problem_creates_an_issue() -> None:
    d = run(None, present=True)
    assert (d.op, d.state, d.occurrences, d.green_streak) == (Op.CREATE, "open", 1, 0)


def test_open_issue_seen_again_gets_a_comment_and_resets_the_streak() -> None:
    d = run(IndexState("open", occurrences=2, green_streak=1, last_run_id="r1"), present=True)
    assert (d.op, d.occurrences, d.green_streak, d.last_run_id) == (Op.COMMENT, 3, 0, "r2")


def test_closed_issue_seen_again_is_reopened() -> None:
    d = run(IndexState("closed", occurrences=4, green_streak=2, last_run_id="r1"), present=True)
    assert (d.op, d.state, d.occurrences) == (Op.REOPEN, "open", 5)


def test_second_iteration_of_the_same_run_does_not_comment_twice() -> None:
    d = run(IndexState("open", occurrences=3, green_streak=0, last_run_id="r2"), present=True)
    assert (d.op, d.occurrences) == (Op.NONE, 3)


def test_green_runs_count_and_close_after_n() -> None:
    first = run(IndexState("open", 1, 0, "r1"), present=False, run_id="r2", verdict=Verdict.GREEN)
    assert (first.op, first.green_streak) == (Op.NONE, 1)
    state = IndexState(first.state, first.occurrences, first.green_streak, first.last_run_id)
    second = run(state, present=False, run_id="r3", verdict=Verdict.GREEN)
    assert (second.op, second.state, second.green_streak) == (Op.CLOSE, "closed", 2)


def test_a_green_run_counts_once_even_over_several_iterations() -> None:
    d = run(IndexState("open", 1, 1, "r2"), present=False, run_id="r2", verdict=Verdict.GREEN)
    assert (d.op, d.green_streak) == (Op.NONE, 1)


def test_failing_or_blocked_run_without_the_problem_neither_counts_nor_resets() -> None:
    for verdict in (Verdict.FAILING, Verdict.BLOCKED, Verdict.NOT_REAL):
        d = run(IndexState("open", 2, 1, "r1"), present=False, verdict=verdict)
        assert (d.op, d.green_streak, d.last_run_id) == (Op.NONE, 1, "r1")


def test_closed_issue_absent_stays_closed() -> None:
    d = run(IndexState("closed", 2, 2, "r1"), present=False, verdict=Verdict.GREEN)
    assert (d.op, d.state) == (Op.NONE, "closed")


def test_close_after_one_closes_on_the_first_green_run() -> None:
    d = run(IndexState("open", 1, 0, "r1"), present=False, verdict=Verdict.GREEN, close_after=1)
    assert d.op is Op.CLOSE
