"""Folding plugin events into records: pure, no pytest process."""

from __future__ import annotations

import json

from greenloop.execute.events import EventFold
from greenloop.records import Outcome, TestResult


def line(event: str, **fields: object) -> str:
    return json.dumps({"event": event, **fields})


def report(nodeid: str, when: str, outcome: str = "passed", **fields: object) -> str:
    return line("report", nodeid=nodeid, when=when, outcome=outcome, duration=0.1, **fields)


class Heard:
    def __init__(self) -> None:
        self.collected: list[int] = []
        self.running: list[str] = []
        self.tests: list[TestResult] = []

    def on_collected(self, n: int) -> None:
        self.collected.append(n)

    def on_running(self, nodeid: str) -> None:
        self.running.append(nodeid)

    def on_test(self, result: TestResult) -> None:
        self.tests.append(result)


def test_garbage_lines_are_reported_not_fatal() -> None:
    fold = EventFold("smoke")
    fold.feed_lines(
        [
            "{not json",
            "[1, 2]",
            line("report", when="call"),  # no nodeid
            "",
            line("from_the_future", x=1),  # unknown kinds are ignored
            line("collected", nodeid="t.py::a", file="t.py", line=3, markers=["p1"]),
            line("test_start", nodeid="t.py::a", time=0),
            report("t.py::a", "setup"),
            report("t.py::a", "call", connections=[["127.0.0.1", 80]]),
            report("t.py::a", "teardown"),
        ]
    )
    assert [b.split(":")[0] for b in fold.bad_lines] == [
        "event line 1",
        "event line 2",
        "event line 3",
    ]
    assert "not JSON" in fold.bad_lines[0]
    [result] = fold.ordered_results()
    assert result.outcome is Outcome.PASSED
    assert result.markers == ("p1",) and result.line == 3
    assert round(result.duration_s, 3) == 0.3
    assert [(c.host, c.port) for c in result.connections] == [("127.0.0.1", 80)]


def test_outcomes_from_each_phase_of_a_test() -> None:
    heard = Heard()
    fold = EventFold("p", listener=heard)
    events = [
        line("collected", nodeid=n, file="t.py")
        for n in ("t::setup", "t::call", "t::down", "t::skip", "t::to")
    ]
    events += [line("collection_finish", count=5)]
    events += [
        report("t::setup", "setup", "failed", message="fixture broke"),
        report("t::setup", "teardown"),
    ]
    events += [
        report("t::call", "setup"),
        report("t::call", "call", "failed", message="assert 1 == 2"),
    ]
    events += [report("t::call", "teardown")]
    events += [
        report("t::down", "setup"),
        report("t::down", "call"),
        report("t::down", "teardown", "failed"),
    ]
    events += [report("t::skip", "setup", "skipped", skip_reason="staging is not available")]
    events += [report("t::skip", "teardown")]
    longrepr = "E   Failed: Timeout (>1.0s) from pytest-timeout."
    events += [report("t::to", "setup"), report("t::to", "call", "failed", longrepr=longrepr)]
    events += [report("t::to", "teardown")]
    fold.feed_lines(events)
    got = {r.nodeid: (r.outcome, r.when) for r in fold.ordered_results()}
    assert got == {
        "t::setup": (Outcome.ERROR, "setup"),
        "t::call": (Outcome.FAILED, "call"),
        "t::down": (Outcome.ERROR, "teardown"),
        "t::skip": (Outcome.SKIPPED, "setup"),
        "t::to": (Outcome.TIMEOUT, "call"),
    }
    assert fold.results["t::skip"].skip_reason == "staging is not available"
    assert heard.collected == [5] and len(heard.tests) == 5


def test_warnings_after_the_last_report_still_reach_the_test() -> None:
    fold = EventFold("p")
    fold.feed_lines(
        [
            report("t::a", "setup"),
            report("t::a", "call"),
            report("t::a", "teardown"),
            line("warning", nodeid="t::a", text="RuntimeWarning: coroutine 'x' was never awaited"),
        ]
    )
    assert fold.results["t::a"].warnings == ("RuntimeWarning: coroutine 'x' was never awaited",)


def test_a_dead_worker_is_a_crash_or_a_timeout() -> None:
    fold = EventFold("p")
    crash = "worker 'gw0' crashed while running 't::x'"
    fold.feed_lines(
        [
            report("t::x", "setup"),
            line("crashed", nodeid="t::x"),
            report("t::x", "???", "failed", longrepr=crash, message=crash),
            report("t::y", "setup"),
            line("timeout", nodeid="t::y", timeout_s=2),
            report("t::y", "???", "failed", longrepr="worker 'gw1' crashed"),
        ]
    )
    assert fold.results["t::x"].outcome is Outcome.CRASHED
    hung = fold.results["t::y"]
    assert hung.outcome is Outcome.TIMEOUT
    assert hung.message.startswith("Timeout (>2s) from pytest-timeout")
    assert hung.duration_s >= 2


def test_nothing_is_dropped_when_pytest_dies() -> None:
    fold = EventFold("p")
    fold.feed_lines(
        [line("collected", nodeid=f"t::{n}", file="t") for n in "abc"]
        + [line("test_start", nodeid="t::a"), report("t::a", "setup")]
    )
    assert fold.running() == ["t::a"] and fold.not_started() == ["t::b", "t::c"]
    fold.end_running(Outcome.CRASHED, "pytest died")
    fold.end_not_started(Outcome.TIMEOUT, "not run")
    assert {r.nodeid: r.outcome for r in fold.ordered_results()} == {
        "t::a": Outcome.CRASHED,
        "t::b": Outcome.TIMEOUT,
        "t::c": Outcome.TIMEOUT,
    }
