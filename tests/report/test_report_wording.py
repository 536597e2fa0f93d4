"""Worklog wording and where outputs go (issue 18)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from report_samples import make_run
from test_report_outputs import context

from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult
from greenloop.report import write_reports
from greenloop.report.context import PreviousRun
from greenloop.report.worklog import changes_since


def test_blocked_tests_are_not_no_longer_failing() -> None:
    started = datetime(2026, 11, 30, tzinfo=UTC)
    previous = PreviousRun("r1", "failing", started, "abc", frozenset({"t.py::a", "t.py::b"}))
    tests = (
        TestResult("t.py::a", Outcome.PASSED),
        TestResult("t.py::b", Outcome.BLOCKED, blocked_by="cache"),
    )
    run = make_run()
    phase = PhaseResult(name="smoke", status=PhaseStatus.BLOCKED, duration_s=0.0, tests=tests)
    run = replace(run, iterations=(replace(run.iterations[-1], phases=(phase,)),))
    lines = "\n".join(changes_since(previous, run))
    assert "No longer failing (1): `t.py::a`" in lines
    assert "Not run this time, so still unknown (1): `t.py::b`" in lines


def test_junit_goes_to_out_even_when_json_goes_elsewhere(tmp_path: Path) -> None:
    paths = write_reports(
        make_run(),
        context(tmp_path),
        out_dir=tmp_path / "out",
        json_path=tmp_path / "ci" / "report.json",
    )
    assert paths.junit == tmp_path / "out" / "junit.xml" and paths.junit.is_file()
    assert paths.json_report == tmp_path / "ci" / "report.json"
