"""The live reporters write what a person watching a phase needs."""

from __future__ import annotations

import io

from rich.console import Console

from greenloop.execute.progress import PlainReporter, RichReporter, Tally, make_reporter
from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult


def drive(reporter: PlainReporter | RichReporter) -> None:
    reporter.on_phase_start("smoke", workers=2, durations={"t::old": 1.0})
    reporter.on_collected(2)
    reporter.on_running("t::a")
    reporter.on_test(TestResult("t::a", Outcome.PASSED, duration_s=0.25))
    reporter.on_test(TestResult("t::b", Outcome.FAILED, duration_s=0.5))
    tests = (TestResult("t::a", Outcome.PASSED), TestResult("t::b", Outcome.FAILED))
    reporter.on_phase_end(PhaseResult("smoke", PhaseStatus.FAILED, 1.5, tests=tests))


def test_plain_reporter_prints_a_line_per_test() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    assert isinstance(make_reporter(console), PlainReporter)
    drive(PlainReporter(console))
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "phase smoke: starting (2 worker(s))",
        "phase smoke: 2 test(s) collected",
        "PASSED   t::a (0.25s)",
        "FAILED   t::b (0.50s)",
        "phase smoke: failed in 1.5s (passed 1, failed 1)",
    ]


def test_rich_reporter_shows_failures_and_the_phase_end() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True)
    assert isinstance(make_reporter(console), RichReporter)
    drive(RichReporter(console))
    text = buffer.getvalue()
    assert "FAILED" in text and "t::b" in text and "failed" in text


def test_eta_comes_from_historical_durations() -> None:
    tally = Tally(workers=2, durations={"a": 1.0, "b": 3.0, "c": 2.0})
    tally.total = 5
    tally.add(TestResult("x", Outcome.PASSED))
    assert tally.eta_s() == 4.0  # 4 left x median 2 s / 2 workers
    assert "ETA ~4s" in tally.line()
    assert Tally().eta_s() is None


def test_a_blocked_phase_says_by_what() -> None:
    buffer = io.StringIO()
    reporter = PlainReporter(Console(file=buffer, width=120))
    tests = (TestResult("t::a", Outcome.BLOCKED, blocked_by="redis"),)
    reporter.on_phase_end(
        PhaseResult("smoke", PhaseStatus.BLOCKED, 0.0, tests=tests, blocked_by="redis")
    )
    assert buffer.getvalue().splitlines() == ["phase smoke: blocked by redis in 0.0s (blocked 1)"]
