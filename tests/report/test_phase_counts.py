"""A phase's counts: one source (`PhaseResult.counts`) that every report shows and that
agrees with each test's outcome.

The field trial's hung database (P4) ended with both tests `timeout` in the JSON while the
phase said `error 2` (JSON counts, worklog line and console table alike).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult


def test_each_test_counts_once_under_its_own_outcome() -> None:
    tests = (
        *(TestResult(f"t.py::test_{o.value}_{n}", o) for o in Outcome for n in (1, 2)),
        TestResult("t.py::test_rerun", Outcome.FAILED, reruns=(Outcome.PASSED,)),
        TestResult("t.py::test_xfail", Outcome.PASSED, xfail="xfailed"),
    )
    counts = PhaseResult("smoke", PhaseStatus.FAILED, 1.0, tests).counts()
    assert sum(counts.values()) == len(tests)
    assert counts["timeout"] == 2 and counts["crashed"] == 2 and counts["error"] == 2
    assert counts["flaky"] == 1 and counts["xfailed"] == 1 and counts["failed"] == 2


def test_greenloop_run_counts_a_timeout_as_a_timeout_everywhere(tmp_path: Path) -> None:
    """A real `greenloop run`: a pass, a failure and a test that outlives test_timeout_s."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_db.py").write_text(
        textwrap.dedent(
            """
            import time

            def test_ok():
                pass

            def test_wrong():
                assert 1 == 2

            def test_hangs():
                time.sleep(60)
            """
        )
    )
    (tmp_path / "greenloop.toml").write_text("[execution]\ntest_timeout_s = 2\n")
    run = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "run", "--json", "r.json", "--out", "out"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},  # the console table on one line per row
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode in (1, 4), run.stdout + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (phase,) = report["phases"]
    outcomes = Counter(t["outcome"] for t in report["tests"])
    assert outcomes == {"passed": 1, "failed": 1, "timeout": 1}, outcomes
    counts = phase["counts"]
    assert {k: v for k, v in counts.items() if v} == dict(outcomes), counts
    worklog = Path(report["worklog"])
    worklog = worklog if worklog.is_absolute() else tmp_path / worklog
    assert "1 passed · 1 failed · 0 errors · 1 timed out · 0 skipped" in worklog.read_text()
    lines = run.stdout.splitlines()
    header = next((ln for ln in lines if "phase" in ln and "status" in ln), run.stdout)
    assert "timeout" in header and "crashed" not in header, header
